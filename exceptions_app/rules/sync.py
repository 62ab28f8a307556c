"""Rules about the plumbing (admin)."""
from __future__ import annotations

from datetime import datetime, timedelta
from collections.abc import Iterable

from django.db.models import OuterRef, Q, Subquery

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Finding, Rule, Scope, register
from exceptions_app.rules.query import jsonable, tracking_numbers
from returnsync.choices import InboundStatus, JobStatus
from returnsync.roles import Role

ERROR_CHARS = 2000


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

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        yield from self._dead_write_backs(scope)
        yield from self._dead_letters(scope)

    def _dead_write_backs(self, scope: Scope) -> Iterable[Finding]:
        from returnsync.models import WriteBack

        queryset = WriteBack.objects.filter(status=JobStatus.DEAD)
        if not scope.is_full:
            refs = sorted(scope.order_refs)
            queryset = queryset.filter(Q(marketplace_return__order_ref__in=refs) | Q(portal_return__order_ref__in=refs))
        rows = queryset.values(
            "id", "action", "status", "attempts", "max_attempts", "last_error", "last_http_status", "last_api_code",
            "updated_at", "connection_id", "connection__kind", "marketplace_return_id", "portal_return_id",
            "marketplace_return__order_ref", "marketplace_return__return_id", "marketplace_return__stage",
            "marketplace_return__raw_status", "marketplace_return__tracking_number",
            "portal_return__order_ref", "portal_return__external_id", "portal_return__stage",
            "portal_return__raw_status", "portal_return__tracking_number",
        )
        for row in rows:
            order_ref = row["marketplace_return__order_ref"] or row["portal_return__order_ref"] or ""
            tiktok = None if row["marketplace_return_id"] is None else {
                "return_id": row["marketplace_return__return_id"], "order_ref": row["marketplace_return__order_ref"],
                "stage": row["marketplace_return__stage"], "raw_status": row["marketplace_return__raw_status"],
                "tracking_number": row["marketplace_return__tracking_number"]}
            portal = None if row["portal_return_id"] is None else {
                "portal_return_id": row["portal_return__external_id"], "order_ref": row["portal_return__order_ref"],
                "stage": row["portal_return__stage"], "raw_status": row["portal_return__raw_status"],
                "tracking_number": row["portal_return__tracking_number"]}
            failed = {"kind": "write_back", "action": row["action"], "status": row["status"],
                      "attempts": row["attempts"], "max_attempts": row["max_attempts"],
                      "last_error": (row["last_error"] or "")[:ERROR_CHARS], "last_http_status": row["last_http_status"],
                      "last_api_code": row["last_api_code"], "failed_at": row["updated_at"]}
            yield Finding(
                subject_kind=SubjectKind.WRITE_BACK, subject_id=row["id"],
                title=f"Write-back failed for good: {row['action']} (order {order_ref or '?'})"[:300],
                evidence=jsonable({"tiktok": tiktok, "portal": portal, "computed": failed}),
                order_ref=order_ref, return_ref=row["marketplace_return__return_id"] or "",
                portal_ref=row["portal_return__external_id"] or "",
                tracking_numbers=tracking_numbers(row["marketplace_return__tracking_number"],
                                                  row["portal_return__tracking_number"]),
                system=row["connection__kind"] or "", connection_id=row["connection_id"],
                marketplace_return_id=row["marketplace_return_id"], portal_return_id=row["portal_return_id"],
                write_back_id=row["id"],
                fingerprint_values=jsonable([row["action"], row["attempts"], failed["last_error"]]),
            )

    def _dead_letters(self, scope: Scope) -> Iterable[Finding]:
        from returnsync.models import InboundEvent, MarketplaceReturn

        queryset = InboundEvent.objects.filter(status=InboundStatus.FAILED)
        if not scope.is_full:
            refs = sorted(scope.order_refs)
            return_ids = MarketplaceReturn.objects.filter(order_ref__in=refs).values("return_id")
            queryset = queryset.filter(Q(subject_ref__in=refs) | Q(subject_ref__in=return_ids))
        about = MarketplaceReturn.objects.filter(return_id=OuterRef("subject_ref")).exclude(return_id="")
        rows = queryset.values(
            "id", "source", "event_type", "dedupe_key", "subject_ref", "attempts", "error", "received_at",
            "connection_id", mr_id=Subquery(about.values("id")[:1]), mr_order_ref=Subquery(about.values("order_ref")[:1]),
        )
        for row in rows:
            failed = {"kind": "inbound_event", "source": row["source"], "event_type": row["event_type"],
                      "dedupe_key": row["dedupe_key"], "subject_ref": row["subject_ref"], "attempts": row["attempts"],
                      "error": (row["error"] or "")[:ERROR_CHARS], "received_at": row["received_at"]}
            order_ref = row["mr_order_ref"] or row["subject_ref"] or ""
            yield Finding(
                subject_kind=SubjectKind.INBOUND_EVENT, subject_id=row["id"],
                title=f"Dead letter: {row['source']} event {row['event_type'] or '?'} about {row['subject_ref'] or '?'}"[:300],
                evidence=jsonable({"tiktok": None, "portal": None, "computed": failed}),
                order_ref=order_ref[:64], return_ref=row["subject_ref"] if row["mr_order_ref"] else "",
                system=row["source"] or "", connection_id=row["connection_id"],
                marketplace_return_id=row["mr_id"], inbound_event_id=row["id"],
                fingerprint_values=jsonable([row["attempts"], failed["error"]]),
            )
