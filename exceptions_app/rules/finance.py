"""Rules about money (finance)."""
from __future__ import annotations

from datetime import datetime, timedelta
from decimal import Decimal
from collections.abc import Iterable

from django.db.models import Exists, F, OuterRef, Q, Subquery
from django.db.models.functions import Abs

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Finding, Rule, Scope, register
from exceptions_app.rules.query import LINKED_TIKTOK_COLUMNS, PORTAL_COLUMNS, TERMINAL_STAGES, portal_finding, scoped
from returnsync.choices import JobStatus, RefundStatus, Stage, System, WriteBackAction
from returnsync.roles import Role

OPEN_STAGES = tuple(stage for stage in Stage.values if stage not in TERMINAL_STAGES)
# Our own write-backs that release TikTok's refund: a refund after one of them went through the portal's flow.
REFUND_RELEASING_ACTIONS = (WriteBackAction.APPROVE_RECEIVED_PACKAGE, WriteBackAction.APPROVE_REFUND,
                            WriteBackAction.OFFER_PARTIAL_REFUND)


@register
class RefundMismatch(Rule):
    code = "refund_mismatch"
    title = "Refund value differs between systems"
    failure = "Refund value mismatch"
    owner = Role.FINANCE
    severity = Severity.HIGH
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"tolerance_amount": "0.50", "tolerance_percent": "1.0"}
    threshold_help = {
        "tolerance_amount": "Differences up to this amount (in the return's currency) are accepted.",
        "tolerance_percent": "…or up to this percentage of the TikTok refund, whichever is larger.",
    }
    description = ("The refund the portal authorised differs from TikTok's refund figure beyond the "
                   "tolerance. The refund call is held until someone validates the amount.")
    what_to_check = ("Both amounts and currencies, the lines and their grading, shipping and restocking "
                     "fees, and any partial refund already offered.")
    how_to_resolve = ("Correct the authorised amount in the portal, or offer the right amount in Seller "
                      "Center; record the amount actually refunded when resolving.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn

        tolerance_amount = Decimal(str(self.threshold("tolerance_amount")))
        tolerance_percent = Decimal(str(self.threshold("tolerance_percent")))
        currency_differs = (~Q(currency=F("marketplace_return__currency")) & ~Q(currency="")
                            & ~Q(marketplace_return__currency=""))
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=False, authorized_refund__isnull=False,
                    marketplace_return__refund_total__isnull=False)
            .exclude(stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .alias(difference=Abs(F("authorized_refund") - F("marketplace_return__refund_total")))
            # The database keeps the rows beyond the absolute tolerance; the percentage is applied exactly below.
            .filter(Q(difference__gt=tolerance_amount) | currency_differs)
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS)
        )
        for row in rows:
            portal_amount, tiktok_amount = row["authorized_refund"], row["marketplace_return__refund_total"]
            difference = abs(portal_amount - tiktok_amount)
            tolerance = max(tolerance_amount, (tiktok_amount * tolerance_percent / 100).quantize(Decimal("0.01")))
            currencies = (row["currency"], row["marketplace_return__currency"])
            same_currency = not all(currencies) or currencies[0] == currencies[1]
            if same_currency and difference <= tolerance:
                continue
            currency = row["marketplace_return__currency"] or row["currency"]
            yield portal_finding(
                self, row,
                computed={"portal_authorized": portal_amount, "tiktok_refund": tiktok_amount,
                          "difference": difference, "tolerance": tolerance, "currency": currency,
                          "currency_mismatch": not same_currency},
                title=(f"Order {row['order_ref']}: portal authorised {portal_amount} {row['currency']}, "
                       f"TikTok {tiktok_amount} {row['marketplace_return__currency']}"),
                fingerprint_values=[portal_amount, tiktok_amount, *currencies],
                amount=difference, currency=currency,
            )


@register
class PartialRefund(Rule):
    code = "partial_refund"
    title = "Partial refund to settle by hand"
    failure = "Partial return / failed inspection"
    owner = Role.FINANCE
    severity = Severity.MEDIUM
    sla = timedelta(hours=48)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("Fewer items came back than expected, or an item failed grading. The refund must be "
                   "partial, and TikTok's API cannot take it from the portal: finance types the computed "
                   "amount into Seller Center. Bundle components are valued by the mapping's price shares.")
    what_to_check = "The per-line amounts (received vs expected, grade, value) and the currency."
    how_to_resolve = ("Offer the computed partial refund in Seller Center, then resolve here with the amount "
                      "actually refunded.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn

        # The flag is set by returnsync.services.portal_return_partial_refund_refresh (returnsync.money).
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(partial_refund_amount__isnull=False)
            .exclude(stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS, "partial_refund_detail")
        )
        for row in rows:
            detail = row["partial_refund_detail"] or {}
            currency = detail.get("currency") or row["currency"]
            amount = row["partial_refund_amount"]
            yield portal_finding(
                self, row, computed={"partial_refund": detail, "refund_due": amount, "currency": currency},
                title=(f"Order {row['order_ref']}: refund {amount} {currency} of {detail.get('total', '?')} "
                       f"by hand in Seller Center"),
                fingerprint_values=detail, amount=amount, currency=currency,
            )


@register
class RefundLag(Rule):
    code = "refund_lag"
    title = "Received but not refunded"
    failure = "Refund lag"
    owner = Role.FINANCE
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"lag_hours": 72}
    threshold_help = {"lag_hours": "How long after warehouse receipt the refund may take (the marketplace's "
                                   "service level)."}
    description = "The warehouse received the return longer ago than the service level, and no refund has been made."
    what_to_check = ("TikTok's status and next action, the refund write-backs, open partial-refund or "
                     "mismatch exceptions on the same return (they hold the refund).")
    how_to_resolve = "Release the refund in Seller Center (or fix what holds it); the exception closes on refund."

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn, Refund

        lag = int(self.threshold("lag_hours"))
        # Uncorrelated sets (hashed once) rather than a probe per return: refunds rarely name
        # both sides, so an index on either column can look useless to the planner.
        succeeded = Refund.objects.filter(status=RefundStatus.SUCCEEDED).order_by()
        refunded_portal = succeeded.filter(portal_return__isnull=False).values("portal_return_id")
        refunded_tiktok = succeeded.filter(marketplace_return__isnull=False).values("marketplace_return_id")
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(received_at__lte=now - timedelta(hours=lag), stage__in=OPEN_STAGES)
            .filter(Q(marketplace_return__isnull=True) | Q(marketplace_return__stage__in=OPEN_STAGES))
            .exclude(pk__in=refunded_portal)
            .exclude(marketplace_return_id__in=refunded_tiktok)
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS)
        )
        for row in rows:
            yield portal_finding(
                self, row, computed={"received_at": row["received_at"], "lag_hours": lag, "refund": None},
                title=f"Order {row['order_ref']}: received {row['received_at']:%Y-%m-%d %H:%M}, not refunded",
                fingerprint_values=[row["received_at"]],
            )


@register
class RefundOutsidePortal(Rule):
    code = "refund_outside_portal"
    title = "Refunded on TikTok while the portal return is open"
    failure = "Refund outside the portal"
    owner = Role.FINANCE
    severity = Severity.CRITICAL
    sla = timedelta(hours=4)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("TikTok shows the return refunded while the portal still treats it as open: the portal "
                   "may refund the buyer a second time.")
    what_to_check = "TikTok's refund (amount, time), the portal's status, and any refund the portal has queued."
    how_to_resolve = ("Close or cancel the return in the portal so it cannot refund again; if both already "
                      "refunded, start recovery with the buyer and note it here.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import Connection, PortalReturn, Refund, WriteBack

        # The TikTok connections as literal ids: the per-return probe needs no join.
        tiktok = list(Connection.objects.filter(kind=System.TIKTOK_SHOP).values_list("pk", flat=True))
        tiktok_refunds = Refund.objects.filter(
            marketplace_return=OuterRef("marketplace_return_id"), status=RefundStatus.SUCCEEDED,
            connection_id__in=tiktok,
        ).order_by("-refunded_at", "-id")
        released_by_us = WriteBack.objects.filter(
            marketplace_return=OuterRef("marketplace_return_id"), action__in=REFUND_RELEASING_ACTIONS,
            status=JobStatus.SUCCEEDED,
        )
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=False, stage__in=OPEN_STAGES)
            .filter(Q(marketplace_return__stage=Stage.REFUNDED) | Exists(tiktok_refunds))
            .filter(~Exists(released_by_us))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS,
                    refund_ref=Subquery(tiktok_refunds.values("external_id")[:1]),
                    refund_amount=Subquery(tiktok_refunds.values("amount")[:1]),
                    refund_currency=Subquery(tiktok_refunds.values("currency")[:1]),
                    refunded_at=Subquery(tiktok_refunds.values("refunded_at")[:1]))
        )
        for row in rows:
            refund = None
            if row["refund_ref"] is not None:
                refund = {"id": row["refund_ref"], "amount": row["refund_amount"],
                          "currency": row["refund_currency"], "refunded_at": row["refunded_at"]}
            amount = row["refund_amount"] if row["refund_amount"] is not None else row["marketplace_return__refund_total"]
            if amount is not None and not isinstance(amount, Decimal):
                amount = Decimal(str(amount))
            yield portal_finding(
                self, row, computed={"tiktok_refund": refund, "portal_stage": row["stage"]},
                title=f"Order {row['order_ref']}: refunded on TikTok while the portal return is {row['stage']}",
                fingerprint_values=[row["marketplace_return__raw_status"], row["refund_ref"]],
                amount=amount, currency=row["refund_currency"] or row["marketplace_return__currency"] or "",
            )
