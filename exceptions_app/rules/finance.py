"""Rules about money (finance)."""
from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Exists, OuterRef, Q, Subquery

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Finding, Rule, Scope, register
from exceptions_app.rules.query import (
    LINKED_TIKTOK_COLUMNS,
    MR,
    PORTAL_COLUMNS,
    TERMINAL_STAGES,
    portal_finding,
    scoped,
)
from returnsync import refund_gate, registry
from returnsync.choices import JobStatus, RefundStatus, ReleaseState, Stage, System, WriteBackAction
from returnsync.registry import ConnectorRole
from returnsync.roles import Role

OPEN_STAGES = tuple(stage for stage in Stage.values if stage not in TERMINAL_STAGES)
# Our own write-backs that release TikTok's refund: a refund after one of them went through the portal's flow.
REFUND_RELEASING_ACTIONS = (WriteBackAction.APPROVE_RECEIVED_PACKAGE, WriteBackAction.APPROVE_REFUND,
                            WriteBackAction.OFFER_PARTIAL_REFUND)


def _tiktok_refunded():
    """Succeeded TikTok refunds on the outer row's TikTok return, summed (a subquery)."""
    from django.db.models import DecimalField, Sum, Value
    from django.db.models.functions import Coalesce

    from returnsync.models import Refund

    return Coalesce(Subquery(
        Refund.objects.filter(marketplace_return=OuterRef("marketplace_return_id"), status=RefundStatus.SUCCEEDED,
                              connection__kind__in=registry.kinds(role=ConnectorRole.MARKETPLACE))
        .order_by().values("marketplace_return").annotate(total=Sum("amount")).values("total")[:1]),
        Value(Decimal("0")), output_field=DecimalField(max_digits=14, decimal_places=2))


def _deadline_note(row: dict, now: datetime) -> str:
    """When TikTok decides by itself (it waits for the seller's receipt decision), as a title suffix."""
    deadline = row.get(MR + "next_action_deadline")
    if row.get(MR + "stage") != Stage.RECEIVED or deadline is None:
        return ""
    return f" — TikTok refunds in full by itself at {deadline:%Y-%m-%d %H:%M} UTC"


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
    description = ("The refund the portal authorised (or, where the portal authorises none, the value of what "
                   "came back) differs from TikTok's refund figure beyond the tolerance, compared like with like "
                   "(the items' price with TikTok's items subtotal, unless the connection's authorised value "
                   "includes tax and shipping). TikTok's release decision is held until someone validates the amount.")
    what_to_check = ("Both amounts and currencies, the basis they are compared on, the lines and their grading, "
                     "restocking and return fees, and any partial refund already offered.")
    how_to_resolve = ("Correct the authorised amount in the portal (the gate then releases the refund by itself), "
                      "or settle the right amount in Seller Center; record the amount actually refunded.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn
        from returnsync.money import partial_refund_compute

        tolerance = (self.threshold("tolerance_amount"), self.threshold("tolerance_percent"))
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(marketplace_return__isnull=False)
            .filter(Q(authorized_refund__isnull=False) | Q(release_state=ReleaseState.HELD_VALUE))
            .exclude(stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS, "connection__options", MR + "refund_subtotal")
        )
        for row in rows:
            on_basis = refund_gate.basis_of(row["connection__options"])
            expected, authorised = row["authorized_refund"], True
            if expected is None:  # held on the value of what came back: compute it (rare)
                computed = partial_refund_compute(portal_return=PortalReturn.objects.get(pk=row["id"]))
                expected, authorised = computed.total, False
                if on_basis == refund_gate.TOTAL:
                    expected = computed.to_total(expected)
            check = refund_gate.value_compare(
                expected=expected, authorised=authorised, subtotal=row[MR + "refund_subtotal"],
                total=row[MR + "refund_total"], on_basis=on_basis,
                currencies=(row["currency"], row[MR + "currency"]), tolerance=tolerance)
            if check is None or check.agrees:
                continue
            currency = row[MR + "currency"] or row["currency"]
            part = "items" if on_basis == refund_gate.SUBTOTAL else "total"
            yield portal_finding(
                self, row,
                computed={"portal_authorized" if authorised else "portal_items_value": check.expected,
                          "tiktok_refund": check.marketplace, "compared_on": part, "difference": check.difference,
                          "tolerance": check.tolerance, "currency": currency,
                          "currency_mismatch": check.currency_mismatch, "release": row["release_state"]},
                title=(f"Order {row['order_ref']}: portal {'authorised' if authorised else 'items worth'} "
                       f"{check.expected} {row['currency']}, TikTok {check.marketplace} {row[MR + 'currency']} "
                       f"({part}){_deadline_note(row, now)}"),
                fingerprint_values=[str(check.expected), str(check.marketplace), row["currency"], row[MR + "currency"]],
                amount=check.difference, currency=currency,
            )


@register
class PartialRefund(Rule):
    code = "partial_refund"
    title = "Partial refund to settle"
    failure = "Partial return / failed inspection"
    owner = Role.FINANCE
    severity = Severity.MEDIUM
    sla = timedelta(hours=48)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("Fewer items came back than expected, or an item failed inspection. TikTok's full refund is "
                   "held (approving the received package would release all of it), so the part that is due is "
                   "settled by hand in Seller Center, or offered from here as a partial refund where TikTok allows "
                   "it. The task knows what TikTok has refunded so far: it says what remains to refund, what to "
                   "recover when TikTok paid more than is due, or that nothing is due. Bundle components are "
                   "valued by the mapping's price shares. It closes itself when TikTok's refund matches.")
    what_to_check = ("The per-line amounts (received vs expected, grade, value), what TikTok refunded so far, "
                     "TikTok's own deadline (it refunds in full by itself when it passes) and the currency.")
    how_to_resolve = ("Refund what remains in Seller Center (or offer it from here), reject the refund when "
                      "nothing is due, or start the recovery when TikTok paid too much; then resolve with the amount "
                      "actually refunded.")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import PortalReturn

        tolerance = registry.tolerance_settings()
        # The flag is set by returnsync.services.portal_return_refund_refresh (returnsync.money).
        rows = (
            scoped(PortalReturn.objects.all(), scope)
            .filter(partial_refund_amount__isnull=False)
            .exclude(stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .values(*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS, "partial_refund_detail", refunded=_tiktok_refunded())
        )
        for row in rows:
            detail = row["partial_refund_detail"] or {}
            currency = detail.get("currency") or row["currency"]
            due = Decimal(str(detail.get("due_total") or detail.get("refund_amount") or "0"))
            linked = row["marketplace_return_id"] is not None
            settlement = refund_gate.settlement_judge(
                due=due, refunded=row["refunded"] if linked else Decimal("0"), currency=currency,
                marketplace_open=linked and row[MR + "stage"] not in refund_gate.CLOSED_STAGES,
                tolerance_settings=tolerance)
            if settlement.action == refund_gate.SETTLED:
                continue
            yield portal_finding(
                self, row,
                computed={"partial_refund": detail, "refund_due": due, "refunded_so_far": settlement.refunded,
                          "remaining": settlement.remaining, "to_recover": settlement.to_recover,
                          "action": settlement.action, "currency": currency, "release": row["release_state"]},
                title=f"Order {row['order_ref']}: {settlement.describe()}{_deadline_note(row, now)}",
                fingerprint_values=[detail.get("lines"), settlement.action],
                amount=settlement.amount, currency=currency,
            )


def _refunded_on_the_order(portal_orders: dict[int, str]) -> set[int]:
    """Of these portal returns (pk → TikTok order id) linked to no TikTok return, those that
    TikTok refunded anyway: a succeeded TikTok refund on the same order whose return covers
    one of the portal lines (by SKU or by order line), or that names no return at all."""
    from returnsync.models import MarketplaceReturnLine, PortalReturnLine, Refund

    if not portal_orders:
        return set()
    refunds = list(Refund.objects.filter(order_ref__in=set(portal_orders.values()), status=RefundStatus.SUCCEEDED,
                                         connection__kind__in=registry.kinds(role=ConnectorRole.MARKETPLACE))
                   .values_list("order_ref", "marketplace_return_id"))
    if not refunds:
        return set()
    covers: dict[str, set] = {}  # order id → SKUs and order lines its refunded returns cover (None: all)
    for order_ref, mreturn_id in refunds:
        covers.setdefault(order_ref, set()).add(None if mreturn_id is None else ("return", mreturn_id))
    return_ids = {key[1] for keys in covers.values() for key in keys if key}
    lines: dict[int, set] = {}
    for mreturn_id, sku, order_line in MarketplaceReturnLine.objects.filter(
            marketplace_return_id__in=return_ids).values_list("marketplace_return_id", "seller_sku", "order_line_id"):
        lines.setdefault(mreturn_id, set()).update({("sku", sku), ("line", order_line)})
    portal_lines: dict[int, set] = {}
    for pr_id, sku, order_line in PortalReturnLine.objects.filter(portal_return_id__in=portal_orders).values_list(
            "portal_return_id", "sku", "order_line__line_id"):
        portal_lines.setdefault(pr_id, set()).update({("sku", sku), ("line", order_line)})
    refunded = set()
    for pr_id, order_ref in portal_orders.items():
        keys = covers.get(order_ref, set())
        mine = portal_lines.get(pr_id, set()) - {("sku", ""), ("line", None), ("line", "")}
        if None in keys or any(mine & lines.get(key[1], set()) for key in keys if key):
            refunded.add(pr_id)
    return refunded


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
        rows = list(rows)
        covered = _refunded_on_the_order({r["id"]: r["order_ref"] for r in rows if r["marketplace_return_id"] is None})
        for row in rows:
            if row["id"] in covered:
                continue
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
