"""Rules about the plumbing (admin)."""
from __future__ import annotations

from datetime import timedelta

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Rule, register
from returnsync.roles import Role


@register
class SyncFailure(Rule):
    code = "sync_failure"
    title = "Sync failed for good"
    failure = "Sync failure"
    owner = Role.ADMIN
    severity = Severity.HIGH
    sla = timedelta(hours=4)
    # Subjects are dead inbound events and dead write-backs (each finding names its own kind).
    subject_kind = SubjectKind.WRITE_BACK
    description = ("An inbound event could not be processed (a dead letter), or an outbound call failed "
                   "for good after its retries: something one system said never reached the other.")
    what_to_check = "The stored payload or the call's last error and HTTP answer, and the connection's health."
    how_to_resolve = ("Fix the cause (credentials, mapping, data) and press Retry: only the failed step "
                      "runs again, never one that already succeeded. The exception closes once it succeeds.")
