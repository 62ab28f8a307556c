"""The refund gate: no marketplace refund is released before it is validated.

On TikTok, approving a received package releases the *full* refund of the request. So the
lifecycle (``returnsync.lifecycle.portal_return_follow_up``) asks the gate, after every
portal change, whether the release may go out; the gate records the answer on the portal
return (``release_state``, ``release_note``) and only ``released`` sends the decision.

Options every returns portal connection carries (a portal connector lists
``PORTAL_OPTIONS`` among its ``Connector.options``):

- ``refund_release``: ``on_inspection`` (default: every expected unit received and every
  line passed inspection), ``on_receipt`` (every expected unit received), or
  ``by_portal`` (the portal's own integration pushes the refund to the marketplace, e.g.
  Loop through Pipe17: ReturnSync never sends the release and checks what arrived);
- ``authorized_refund_basis``: what the portal's authorised value covers, ``subtotal``
  (the items' price, before tax and shipping: the default) or ``total``; the gate
  compares it with the same part of the marketplace's refund figure.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum

from returnsync import registry
from returnsync.choices import RefundStatus, ReleaseState, Stage, TimelineKind
from returnsync.money import ZERO, PartialRefund
from returnsync.registry import ConnectorRole, OptionSpec

# The marketplace's return is over without a refund to release (rejected, cancelled, closed).
CLOSED_STAGES = (Stage.REJECTED, Stage.CANCELLED, Stage.CLOSED, Stage.REFUNDED)

ON_INSPECTION, ON_RECEIPT, BY_PORTAL = "on_inspection", "on_receipt", "by_portal"
RELEASE_POLICIES = (ON_INSPECTION, ON_RECEIPT, BY_PORTAL)
SUBTOTAL, TOTAL = "subtotal", "total"

PORTAL_OPTIONS = (
    OptionSpec("refund_release", ON_INSPECTION,
               "When TikTok's full refund may be released: on_inspection (everything back and passed), "
               "on_receipt (everything back), or by_portal (the portal pushes refunds itself; ReturnSync checks)."),
    OptionSpec("authorized_refund_basis", SUBTOTAL,
               "What the portal's authorised refund covers: subtotal (the items' price) or total (with tax "
               "and shipping). It is compared with the same part of TikTok's refund."),
)


# --- judging ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class GateDecision:
    state: str  # a ReleaseState
    note: str
    release: bool = False  # send the release decision now


@dataclass(frozen=True)
class ValueCheck:
    """The portal's value against the marketplace's figure, on the same basis."""

    basis: str  # SUBTOTAL or TOTAL
    expected: Decimal  # the portal's authorised value, else the value of what came back
    authorised: bool  # True: the portal's own authorised value
    marketplace: Decimal  # the marketplace's figure on that basis
    tolerance: Decimal
    currency_mismatch: bool

    @property
    def difference(self) -> Decimal:
        return abs(self.expected - self.marketplace)

    @property
    def agrees(self) -> bool:
        return not self.currency_mismatch and self.difference <= self.tolerance


def policy(connection) -> str:
    value = (connection.options or {}).get("refund_release") or ON_INSPECTION
    return value if value in RELEASE_POLICIES else ON_INSPECTION


def basis(connection) -> str:
    value = (connection.options or {}).get("authorized_refund_basis") or SUBTOTAL
    return TOTAL if value == TOTAL else SUBTOTAL


def marketplace_figure(marketplace_return, on_basis: str) -> Decimal | None:
    """The marketplace's refund figure on a basis: the items' part (before tax and shipping)
    or the whole."""
    if on_basis == SUBTOTAL and marketplace_return.refund_subtotal is not None:
        return marketplace_return.refund_subtotal
    return marketplace_return.refund_total


def value_check(*, portal_return, expectation: PartialRefund | None) -> ValueCheck | None:
    """Compare like with like: the portal's authorised value (or, without one, the value of
    what came back) with the marketplace's refund figure on the connection's basis. None
    when either side is unknown."""
    mreturn = portal_return.marketplace_return
    if mreturn is None:
        return None
    on_basis = basis(portal_return.connection)
    figure = marketplace_figure(mreturn, on_basis)
    if figure is None:
        return None
    if portal_return.authorized_refund is not None:
        expected, authorised = portal_return.authorized_refund, True
    elif expectation is not None and expectation.lines:
        expected, authorised = expectation.total, False
        if on_basis == TOTAL:
            expected = expectation.to_total(expected)
    else:
        return None
    currencies = (portal_return.currency, mreturn.currency)
    return ValueCheck(basis=on_basis, expected=expected, authorised=authorised, marketplace=figure,
                      tolerance=registry.money_tolerance(figure),
                      currency_mismatch=all(currencies) and currencies[0] != currencies[1])


def expected_refund_total(*, portal_return, expectation: PartialRefund | None) -> Decimal | None:
    """What the buyer should get back in all, like the marketplace's refund figure (tax and
    shipping included): the portal's authorised value (scaled from the items' part when
    that is its basis), else the value of what came back. The one expected amount behind
    the partial-refund task and the reconciliation."""
    mreturn = portal_return.marketplace_return
    if portal_return.authorized_refund is not None:
        authorised = portal_return.authorized_refund
        if basis(portal_return.connection) == SUBTOTAL and mreturn is not None and mreturn.refund_total is not None \
                and mreturn.refund_subtotal:
            return (authorised * mreturn.refund_total / mreturn.refund_subtotal).quantize(
                Decimal("0.01"), rounding=ROUND_HALF_UP)
        return authorised
    if expectation is None or expectation.unresolved or not expectation.lines:
        return None
    return expectation.due_total


def marketplace_refunded(marketplace_return) -> Decimal:
    """What the marketplace has refunded on this return so far (succeeded refunds)."""
    from returnsync.models import Refund

    kinds = registry.kinds(role=ConnectorRole.MARKETPLACE)
    total = (Refund.objects.filter(marketplace_return=marketplace_return, status=RefundStatus.SUCCEEDED,
                                   connection__kind__in=kinds).aggregate(total=Sum("amount"))["total"])
    return total or ZERO


def _count(lines) -> str:
    return ", ".join(f"{ln.received_quantity} of {ln.expected_quantity} × {ln.sku}" for ln in lines)


def release_decide(*, portal_return, expectation: PartialRefund | None) -> GateDecision:
    """Where the release of the marketplace's full refund stands for this portal return."""
    pr = portal_return
    mreturn = pr.marketplace_return
    if mreturn is None:
        return GateDecision(ReleaseState.UNLINKED, "Not linked to a TikTok return: nothing is released.")
    ops = registry.marketplace_for(mreturn.connection)
    if not ops.needs_parcel(mreturn):
        return GateDecision(ReleaseState.NOT_APPLICABLE, "A refund-only request: no parcel comes back.")
    refunded = marketplace_refunded(mreturn)
    if refunded > 0:
        return GateDecision(ReleaseState.REFUNDED, f"TikTok refunded {refunded} {mreturn.currency}.")
    if ops.refund_release_sent(mreturn):
        return GateDecision(ReleaseState.RELEASED, "The release decision was sent to TikTok.")
    if mreturn.stage in CLOSED_STAGES:
        return GateDecision(ReleaseState.NOT_APPLICABLE, f"TikTok's return is {mreturn.get_stage_display().lower()}.")
    rule = policy(pr.connection)
    received = pr.received_at is not None or any(ln.received_quantity for ln in (expectation.lines if expectation
                                                                                  else ()))
    if not received or expectation is None:
        return GateDecision(ReleaseState.AWAITING_RECEIPT, "The warehouse has not scanned the parcel yet.")
    if expectation.unresolved:
        return GateDecision(ReleaseState.HELD_UNMAPPED,
                            f"Returned SKU {', '.join(expectation.unresolved)} matches nothing TikTok's return "
                            "covers: map it to its bundle.")
    if expectation.short_lines:
        return GateDecision(ReleaseState.HELD_SHORT, f"Short: {_count(expectation.short_lines)} received.")
    if expectation.failed_lines:
        failed = ", ".join(f"{ln.sku} {ln.reason}" for ln in expectation.failed_lines)
        return GateDecision(ReleaseState.HELD_INSPECTION, f"Failed inspection: {failed}.")
    if rule == ON_INSPECTION and expectation.pending_units:
        return GateDecision(ReleaseState.AWAITING_INSPECTION,
                            f"{expectation.pending_units} unit(s) received, not inspected yet.")
    check = value_check(portal_return=pr, expectation=expectation)
    if check is not None and not check.agrees:
        side = "authorised" if check.authorised else "items worth"
        return GateDecision(ReleaseState.HELD_VALUE,
                            f"Portal {side} {check.expected} {pr.currency or mreturn.currency}, TikTok "
                            f"{check.marketplace} {mreturn.currency} ({'items' if check.basis == SUBTOTAL else 'total'})"
                            f"; tolerance {check.tolerance}.")
    if rule == BY_PORTAL:
        return GateDecision(ReleaseState.BY_PORTAL,
                            f"Everything is back and agrees; {pr.connection.get_kind_display()} releases the refund.")
    return GateDecision(ReleaseState.RELEASED, "Everything expected is back"
                        + (" and passed inspection" if rule == ON_INSPECTION else "")
                        + "; the value agrees: release sent to TikTok.", release=True)


def release_apply(*, portal_return, expectation: PartialRefund | None) -> GateDecision:
    """Judge, record the state on the portal return (a timeline note when it changes), and
    send the release decision when everything agrees (queued once: its key is fixed)."""
    from returnsync.timeline import timeline_record

    pr = portal_return
    decision = release_decide(portal_return=pr, expectation=expectation)
    if decision.release:
        registry.marketplace_for(pr.marketplace_return.connection).refund_release(
            marketplace_return=pr.marketplace_return)
    if (decision.state, decision.note[:300]) != (pr.release_state, pr.release_note):
        pr.release_state, pr.release_note = decision.state, decision.note[:300]
        pr.save(update_fields=["release_state", "release_note", "updated_at"])
        if decision.state in (*ReleaseState.holds(), ReleaseState.RELEASED, ReleaseState.BY_PORTAL):
            timeline_record(system=pr.connection.kind, kind=TimelineKind.NOTE, portal_return=pr,
                            summary=f"Refund gate: {ReleaseState(decision.state).label.lower()}. {decision.note}",
                            data={"release_state": decision.state},
                            dedupe_key=f"gate:{pr.pk}:{decision.state}:{decision.note[:120]}")
    return decision
