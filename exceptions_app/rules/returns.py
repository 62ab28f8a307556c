"""Rules about a return's journey between TikTok and the portal (CX and operations)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Exists, F, OuterRef, Q, Subquery, Value
from django.db.models.functions import Replace, Upper

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Finding, Rule, Scope, register
from exceptions_app.rules.query import (
    LINKED_TIKTOK_COLUMNS,
    PORTAL_COLUMNS,
    TERMINAL_STAGES,
    TIKTOK_COLUMNS,
    UNRETURNED_STAGES,
    jsonable,
    portal_finding,
    scoped,
    tiktok_side,
    tracking_numbers,
)
from returnsync.choices import ReleaseState, Stage, System, WriteBackAction
from returnsync.roles import Role

# TikTok return types that send no parcel back (nothing for a portal to do).
REFUND_ONLY_TYPES = ("REFUND", "REFUND_ONLY")


def _created_before(cutoff: datetime) -> Q:
    """Created in the source before ``cutoff`` (our own row's time when the source gave none)."""
    return Q(source_created_at__lte=cutoff) | Q(source_created_at__isnull=True, created_at__lte=cutoff)


def _tiktok_finding(rule: Rule, row: dict, *, title: str, computed: dict, fingerprint_values,
                    **anchors) -> Finding:
    """A Finding about a TikTok return (the row holds TIKTOK_COLUMNS unprefixed)."""
    tiktok = tiktok_side(row, "")
    return Finding(
        subject_kind=SubjectKind.MARKETPLACE_RETURN, subject_id=row["id"], title=title[:300],
        evidence={"tiktok": tiktok, "portal": None, "computed": jsonable(computed)},
        order_ref=row["order_ref"], return_ref=row["return_id"], tracking_numbers=tracking_numbers(row["tracking_number"]),
        buyer_postal_code=row.get("order__buyer_postal_code") or "", system=row.get("connection__kind") or "",
        connection_id=row.get("connection_id"), marketplace_return_id=row["id"],
        fingerprint_values=jsonable(fingerprint_values), **anchors,
    )


@register
class PortalBypass(Rule):
    code = "portal_bypass"
    title = "TikTok return missing from the portal"
    failure = "Platform-managed return bypasses the portal"
    owner = Role.OPERATIONS
    severity = Severity.HIGH
    sla = timedelta(hours=4)
    subject_kind = SubjectKind.MARKETPLACE_RETURN
    thresholds = {"grace_minutes": 30}
    threshold_help = {"grace_minutes": "How long after TikTok created the return the portal may still lack it "
                                       "(the mirror normally takes seconds)."}
    description = ("A TikTok return that needs a parcel back has no portal record after the grace period: "
                   "automatic mirroring did not happen or failed, so the buyer may have no label and the "
                   "warehouse will not recognise the parcel.")
    what_to_check = ("The mirror write-back on the return page (its last error), whether the portal "
                     "connection is enabled and healthy, and whether the order's SKUs exist in the portal.")
    how_to_resolve = ("Fix the cause (credentials, SKU, connection) and press \"Create it in the portal now\" "
                      "(it retries the failed mirror, or queues one); or create the return in the portal by hand with the TikTok return id as its reference. "
                      "The exception closes itself once the portal record is linked.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import Connection, MarketplaceReturn, PortalReturn, WriteBack

        if not Connection.objects.filter(kind__in=System.portals(), is_enabled=True).exists():
            return  # no portal to mirror into: nothing can be missing from it
        grace = int(self.threshold("grace_minutes"))
        mirror = WriteBack.objects.filter(
            marketplace_return=OuterRef("pk"), action=WriteBackAction.CREATE_PORTAL_RETURN,
        ).order_by("-created_at", "-id")
        rows = (
            scoped(MarketplaceReturn.objects.all(), scope)
            .filter(_created_before(now - timedelta(minutes=grace)))
            .exclude(stage__in=TERMINAL_STAGES)
            # A request still awaiting the seller's approval has no parcel yet: nothing to mirror.
            .exclude(stage=Stage.REQUESTED)
            .exclude(return_type__in=REFUND_ONLY_TYPES)
            .filter(~Exists(PortalReturn.objects.filter(marketplace_return=OuterRef("pk"))))
            .filter(~Exists(PortalReturn.objects.filter(return_ref=OuterRef("return_id"))))
            .values("id", *TIKTOK_COLUMNS, "connection_id", "connection__kind", "order__buyer_postal_code",
                    mirror_id=Subquery(mirror.values("id")[:1]),
                    mirror_status=Subquery(mirror.values("status")[:1]),
                    mirror_attempts=Subquery(mirror.values("attempts")[:1]),
                    mirror_error=Subquery(mirror.values("last_error")[:1]))
        )
        for row in rows:
            mirror_info = None
            if row["mirror_id"] is not None:
                mirror_info = {"status": row["mirror_status"], "attempts": row["mirror_attempts"],
                               "last_error": (row["mirror_error"] or "")[:2000]}
            yield _tiktok_finding(
                self, row, title=f"TikTok return {row['return_id']} (order {row['order_ref']}) missing from the portal",
                computed={"grace_minutes": grace, "portal_record": None, "mirror": mirror_info,
                          "why_not_mirrored": (mirror_info or {}).get("last_error")
                          or ("no mirror attempt recorded" if mirror_info is None else "")},
                fingerprint_values=[row["return_id"]],
                write_back_id=row["mirror_id"],
            )


@register
class OrphanPortalReturn(Rule):
    code = "orphan_portal_return"
    title = "Portal return matches no TikTok return"
    failure = "Orphaned portal return"
    owner = Role.CX
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"grace_minutes": 60}
    threshold_help = {"grace_minutes": "How long a new portal return may wait for the TikTok sync to bring "
                                       "its order or return before it counts as orphaned."}
    description = ("A portal return whose order id and return reference match no TikTok order or return "
                   "we know: a typo by the buyer, an order from another channel, or a TikTok sync gap.")
    what_to_check = ("The order number and zip the buyer typed in the portal (evidence shows what was "
                     "tried), the TikTok order in Seller Center, and the TikTok connection's sync health.")
    how_to_resolve = ("Correct the order reference in the portal (the exception closes on the next sync), "
                      "or dismiss it when the return belongs to another sales channel.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import MarketplaceReturn, Order, PortalReturn

        grace = int(self.threshold("grace_minutes"))
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=True, order__isnull=True)
            .filter(_created_before(now - timedelta(minutes=grace)))
            .exclude(stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .filter(~Exists(Order.objects.filter(order_id=OuterRef("order_ref"))))
            .filter(~Exists(MarketplaceReturn.objects.filter(order_ref=OuterRef("order_ref"))))
            .filter(Q(return_ref="") | ~Exists(MarketplaceReturn.objects.filter(return_id=OuterRef("return_ref"))))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS)
        )
        for row in rows:
            tried = {"order_ref": row["order_ref"], "return_ref": row["return_ref"], "order_found": False,
                     "tiktok_return_found": False, "grace_minutes": grace}
            yield portal_finding(
                self, row, computed={"tried": tried},
                title=f"Portal return {row['external_id']} matches no TikTok order ({row['order_ref'] or 'no order id'})",
                fingerprint_values=[row["order_ref"], row["return_ref"]],
            )


@register
class StatusDrift(Rule):
    code = "status_drift"
    title = "Received at the warehouse, unreturned on TikTok"
    failure = 'Status drift: received in the warehouse, "unreturned" on TikTok'
    owner = Role.OPERATIONS
    severity = Severity.HIGH
    sla = timedelta(hours=8)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"after_minutes": 120}
    threshold_help = {"after_minutes": "How long after the warehouse scan TikTok may still show the item as "
                                       "not returned (the write-back normally takes seconds)."}
    description = ("The warehouse scanned the parcel in and the refund gate let the receipt go to TikTok, but "
                   "TikTok still shows the return as awaiting the item, so the buyer sees \"unreturned\". (A release "
                   "the gate holds on purpose — short, failed inspection, value to check — is not drift: the "
                   "partial-refund or mismatch case owns it.)")
    what_to_check = ("The \"received package\" write-back on the return page (status, last error), TikTok's "
                     "current status and next action, and the TikTok connection's health.")
    how_to_resolve = ("Retry the failed write-back from here; if TikTok answered success yet recorded nothing, "
                      "\"Send the receipt to TikTok again\" (TikTok refuses a second approval, so it cannot pay "
                      "twice); or confirm receipt in Seller Center by hand. "
                      "The exception closes itself when TikTok reports the package received.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn, WriteBack

        after = int(self.threshold("after_minutes"))
        receipt = WriteBack.objects.filter(
            marketplace_return=OuterRef("marketplace_return_id"), action=WriteBackAction.APPROVE_RECEIVED_PACKAGE,
        ).order_by("-created_at", "-id")
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=False, received_at__lte=now - timedelta(minutes=after),
                    stage__in=(Stage.RECEIVED, Stage.INSPECTED, Stage.REFUNDED, Stage.CLOSED),
                    marketplace_return__stage__in=UNRETURNED_STAGES)
            # A release the refund gate holds on purpose is not drift: the case owning the hold shows.
            .exclude(release_state__in=ReleaseState.holds())
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS,
                    wb_id=Subquery(receipt.values("id")[:1]), wb_status=Subquery(receipt.values("status")[:1]),
                    wb_attempts=Subquery(receipt.values("attempts")[:1]),
                    wb_error=Subquery(receipt.values("last_error")[:1]))
        )
        for row in rows:
            write_back = None
            if row["wb_id"] is not None:
                write_back = {"status": row["wb_status"], "attempts": row["wb_attempts"],
                              "last_error": (row["wb_error"] or "")[:2000]}
            yield portal_finding(
                self, row, computed={"after_minutes": after, "receipt_write_back": write_back},
                title=(f"Order {row['order_ref']}: received at the warehouse, TikTok still shows "
                       f"{row['marketplace_return__raw_status'] or row['marketplace_return__stage']}"),
                fingerprint_values=[row["marketplace_return__raw_status"], row["marketplace_return__next_action"],
                                    row["received_at"]],
                write_back_id=row["wb_id"],
            )


@register
class TrackingMismatch(Rule):
    code = "tracking_mismatch"
    title = "Tracking numbers differ"
    failure = "Tracking mismatch"
    owner = Role.CX
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("TikTok and the portal carry different return tracking numbers for the same return (both "
                   "set; spaces and letter case ignored): the buyer may have shipped with another label, "
                   "and the parcel may not be recognised at the warehouse.")
    what_to_check = "Both tracking numbers and carriers side by side, and which one the carrier shows moving."
    how_to_resolve = ("Correct the wrong system (usually the portal label) or note which parcel is real; "
                      "the exception closes when both agree.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn

        def normalised(field: str):
            return Upper(Replace(F(field), Value(" "), Value("")))

        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=False)
            .exclude(tracking_number="").exclude(marketplace_return__tracking_number="")
            .exclude(stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .annotate(portal_tracking=normalised("tracking_number"),
                      tiktok_tracking=normalised("marketplace_return__tracking_number"))
            .exclude(portal_tracking=F("tiktok_tracking"))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS)
        )
        for row in rows:
            tiktok_number, portal_number = row["marketplace_return__tracking_number"], row["tracking_number"]
            yield portal_finding(
                self, row,
                computed={"tiktok_tracking": tiktok_number, "portal_tracking": portal_number,
                          "tiktok_carrier": row["marketplace_return__carrier"], "portal_carrier": row["carrier"]},
                title=f"Order {row['order_ref']}: TikTok tracking {tiktok_number} ≠ portal {portal_number}",
                fingerprint_values=[tiktok_number, portal_number],
            )


@register
class ApprovalDeadline(Rule):
    code = "approval_deadline"
    title = "Approval deadline about to lapse"
    failure = "Approval deadline at risk"
    owner = Role.CX
    severity = Severity.HIGH
    sla = timedelta(hours=2)
    subject_kind = SubjectKind.MARKETPLACE_RETURN
    thresholds = {"warn_hours": 12}
    threshold_help = {"warn_hours": "Warn this many hours before TikTok's response deadline (TikTok "
                                    "auto-approves requests left unanswered for 48 h)."}
    description = ("A return request awaits the seller's response and TikTok's deadline is close: if nobody "
                   "answers, TikTok approves it automatically.")
    closes_only_when_cleared = True
    still_holds_message = ("TikTok still waits for the seller's answer: approve or reject the request (on the "
                           "return page or in Seller Center). The case closes itself once TikTok no longer waits.")
    what_to_check = "The request (reason, amount, evidence photos) in Seller Center and the deadline shown here."
    how_to_resolve = ("Approve or reject the request in Seller Center before the deadline. The exception "
                      "closes itself once TikTok no longer waits for the seller.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import MarketplaceReturn

        warn = int(self.threshold("warn_hours"))
        rows = (
            scoped(MarketplaceReturn.objects.all(), scope)
            .filter(stage=Stage.REQUESTED, next_action_deadline__isnull=False,
                    next_action_deadline__lte=now + timedelta(hours=warn))
            .values("id", *TIKTOK_COLUMNS, "connection_id", "connection__kind", "order__buyer_postal_code")
        )
        for row in rows:
            deadline = row["next_action_deadline"]
            yield _tiktok_finding(
                self, row, computed={"deadline": deadline, "warn_hours": warn, "lapsed": deadline <= now},
                title=f"TikTok return {row['return_id']}: respond before {deadline:%Y-%m-%d %H:%M} UTC",
                fingerprint_values=[row["return_id"], deadline],
            )


@register
class ReleaseDeadline(Rule):
    code = "release_deadline"
    title = "TikTok refunds in full before the parcel is checked"
    failure = "Refund decision due before TikTok's own deadline"
    owner = Role.OPERATIONS
    severity = Severity.HIGH
    sla = timedelta(hours=2)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"warn_hours": 12}
    threshold_help = {"warn_hours": "Warn this many hours before TikTok decides the received package by itself "
                                    "(it approves the full refund when nobody answers)."}
    description = ("TikTok waits for the seller's decision on a delivered parcel, and the refund gate is still "
                   "waiting for the warehouse (the scan, or the inspection): when TikTok's deadline passes it "
                   "approves the full refund by itself, whatever came back.")
    what_to_check = ("Whether the parcel is in the warehouse and why it is not scanned or inspected yet, and "
                     "TikTok's deadline shown here.")
    closes_only_when_cleared = True
    still_holds_message = ("TikTok still waits for the seller's receipt decision and the warehouse is not done: "
                           "the case closes itself once the gate no longer waits or TikTok no longer does.")
    how_to_resolve = ("Get the parcel scanned and inspected before the deadline (the gate then releases or holds "
                      "the refund), or decide in Seller Center by hand. The exception closes itself once the gate "
                      "no longer waits or TikTok no longer does.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn

        warn = int(self.threshold("warn_hours"))
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=False,
                    release_state__in=(ReleaseState.AWAITING_RECEIPT, ReleaseState.AWAITING_INSPECTION,
                                       ReleaseState.AWAITING_AUTHORISATION),
                    marketplace_return__stage=Stage.RECEIVED, marketplace_return__next_action_deadline__isnull=False,
                    marketplace_return__next_action_deadline__lte=now + timedelta(hours=warn))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS, "release_note")
        )
        for row in rows:
            deadline = row["marketplace_return__next_action_deadline"]
            waiting = {ReleaseState.AWAITING_RECEIPT: "the scan",
                       ReleaseState.AWAITING_AUTHORISATION: "the authorised value"}.get(row["release_state"],
                                                                                       "the inspection")
            yield portal_finding(
                self, row,
                computed={"tiktok_deadline": deadline, "warn_hours": warn, "waiting_for": waiting,
                          "gate": row["release_note"], "lapsed": deadline <= now},
                title=(f"Order {row['order_ref']}: TikTok refunds in full at {deadline:%Y-%m-%d %H:%M} UTC; "
                       f"still waiting for {waiting}"),
                fingerprint_values=[row["return_ref"], deadline, row["release_state"]],
            )
