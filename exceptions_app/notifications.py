"""Email digests: one mail per owning role listing its new high-severity exceptions and
its newly breached ones, so a surge of 500 cases is one mail, not 500.

Recipients are the role group's active members with an email address. After sending,
the cases are stamped (``notified_at`` / ``breach_notified_at``) in one UPDATE each, so
the next digest does not repeat them. The console email backend is the default.
"""
from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import datetime

from django.conf import settings
from django.contrib.auth import get_user_model
from django.core.mail import EmailMessage, get_connection
from django.db import transaction
from django.urls import reverse
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus, Severity
from exceptions_app.models import ExceptionCase
from exceptions_app.services import exceptions_mark_breached
from returnsync.roles import Role

logger = logging.getLogger(__name__)

NOTIFY_SEVERITIES = (Severity.HIGH, Severity.CRITICAL)
# Cases listed one by one in a mail; the rest are counted ("and 480 more").
LISTED = 50


@dataclass
class Digest:
    role: str
    new: list[ExceptionCase] = field(default_factory=list)
    breached: list[ExceptionCase] = field(default_factory=list)
    recipients: list[str] = field(default_factory=list)

    @property
    def subject(self) -> str:
        parts = []
        if self.new:
            parts.append(f"{len(self.new)} new high-severity")
        if self.breached:
            parts.append(f"{len(self.breached)} past SLA")
        return f"[ReturnSync] {Role(self.role).label}: {' and '.join(parts)} exception(s)"

    def body(self) -> str:
        base = getattr(settings, "RETURNSYNC_BASE_URL", "").rstrip("/")
        lines = [f"Exceptions for {Role(self.role).label}.", ""]
        for heading, cases in (("New high-severity exceptions", self.new), ("Past their SLA", self.breached)):
            if not cases:
                continue
            lines.append(f"{heading} ({len(cases)}):")
            for case in cases[:LISTED]:
                due = f"due {timezone.localtime(case.due_at):%Y-%m-%d %H:%M}" if case.due_at else "no due time"
                ref = f" order {case.order_ref}" if case.order_ref else ""
                lines.append(f"  - #{case.pk} [{case.get_severity_display()}] {case.title}{ref} ({due}) "
                             f"{base}{reverse('exception_detail', args=[case.pk])}")
            if len(cases) > LISTED:
                lines.append(f"  … and {len(cases) - LISTED} more.")
            lines.append("")
        lines.append(f"Your queue: {base}{reverse('exception_list')}?owner_role={self.role}")
        return "\n".join(lines)


def _recipients() -> dict[str, list[str]]:
    User = get_user_model()
    by_role: dict[str, list[str]] = defaultdict(list)
    rows = (
        User.objects.filter(is_active=True, groups__name__in=[r.value for r in Role])
        .exclude(email="")
        .values_list("groups__name", "email")
        .order_by("email")
    )
    for role, email in rows:
        if email not in by_role[role]:
            by_role[role].append(email)
    return by_role


def digests_collect(*, now: datetime) -> dict[str, Digest]:
    active = ExceptionCase.objects.filter(status__in=ExceptionStatus.active()).order_by("due_at", "id")
    digests: dict[str, Digest] = {}
    for case in active.filter(severity__in=NOTIFY_SEVERITIES, notified_at__isnull=True):
        digests.setdefault(case.owner_role, Digest(case.owner_role)).new.append(case)
    for case in active.filter(breached_at__isnull=False, breach_notified_at__isnull=True):
        digests.setdefault(case.owner_role, Digest(case.owner_role)).breached.append(case)
    recipients = _recipients()
    for role, digest in digests.items():
        digest.recipients = recipients.get(role, [])
    return digests


def exception_digests_send(*, now: datetime | None = None) -> dict[str, int]:
    """Send one digest per role with something to say; returns role → cases included."""
    now = now or timezone.now()
    exceptions_mark_breached(now=now)
    with transaction.atomic():
        # Lock the rows this digest covers so two runs at once do not both mail them.
        list(ExceptionCase.objects.select_for_update(skip_locked=True).filter(
            status__in=ExceptionStatus.active()).filter(notified_at__isnull=True).values_list("pk", flat=True))
        digests = digests_collect(now=now)
        messages = [
            EmailMessage(subject=d.subject, body=d.body(), to=d.recipients)
            for d in digests.values() if d.recipients
        ]
        for role, digest in digests.items():
            if not digest.recipients:
                logger.warning("no %s member has an email address: %d exceptions not mailed", role,
                               len(digest.new) + len(digest.breached))
        if messages:
            get_connection().send_messages(messages)
        new_ids = [c.pk for d in digests.values() for c in d.new]
        breached_ids = [c.pk for d in digests.values() for c in d.breached]
        if new_ids:
            ExceptionCase.objects.filter(pk__in=new_ids).update(notified_at=now)
        if breached_ids:
            ExceptionCase.objects.filter(pk__in=breached_ids).update(breach_notified_at=now)
    return {role: len(d.new) + len(d.breached) for role, d in digests.items()}
