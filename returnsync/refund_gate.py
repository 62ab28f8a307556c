"""The refund gate: no marketplace refund is released before it is validated.

On TikTok, approving a received package releases the *full* refund of the request. So the
lifecycle (``returnsync.lifecycle.portal_return_follow_up``) asks the gate, after every
portal change and whenever TikTok's return moves, whether the release may go out; the gate
records the answer on the portal return (``release_state``, ``release_note``) and only
``released`` sends the decision. TikTok offers no call that records a receipt without
deciding the money (rejecting the received package denies the refund), so a held release
sends nothing: the case that owns the hold (partial refund, value mismatch, bundle mapping)
is what a person sees, and the deadline guard warns before TikTok decides by itself.

Options every returns portal connection carries (a portal connector lists
``PORTAL_OPTIONS`` among its ``Connector.options``):

- ``refund_release``: ``on_inspection`` (default: every expected unit received and every
  line passed inspection), ``on_receipt`` (every expected unit received), or
  ``by_portal`` (the portal's own integration pushes the refund to the marketplace, e.g.
  Loop through Pipe17: ReturnSync never sends the release and checks what arrived);
- ``authorized_refund_basis``: what the portal's authorised value covers, ``subtotal``
  (the items' price, before tax and shipping: the default) or ``total``; the gate
  compares it with the same part of the marketplace's refund figure;
- ``authorized_refund_required``: the portal owns the refund value (ReturnGo): the release
  waits for its authorised value instead of judging by the value of what came back.
"""
from __future__ import annotations

from dataclasses import dataclass
from decimal import ROUND_HALF_UP, Decimal

from django.db.models import Sum

from returnsync import registry
from returnsync.choices import RefundStatus, ReleaseState, Stage, TimelineKind
from returnsync.money import ZERO, PartialRefund, cents
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
    OptionSpec("authorized_refund_required", False,
               "The portal owns the refund value (it authorises every refund): the release waits for its "
               "authorised value. Otherwise the value of what came back is compared."),
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


def basis_of(options: dict | None) -> str:
    return TOTAL if (options or {}).get("authorized_refund_basis") == TOTAL else SUBTOTAL


def basis(connection) -> str:
    return basis_of(connection.options)


def marketplace_figure(*, subtotal: Decimal | None, total: Decimal | None, on_basis: str) -> Decimal | None:
    """The marketplace's refund figure on a basis: the items' part (before tax and shipping)
    or the whole."""
    if on_basis == SUBTOTAL and subtotal is not None:
        return subtotal
    return total


def value_compare(*, expected: Decimal, authorised: bool, subtotal: Decimal | None, total: Decimal | None,
                  on_basis: str, currencies: tuple[str, str], tolerance: tuple[str, str] | None = None
                  ) -> ValueCheck | None:
    """Compare like with like: ``expected`` (on ``on_basis``) with the marketplace's figure
    on the same basis. None when the marketplace gives no figure."""
    figure = marketplace_figure(subtotal=subtotal, total=total, on_basis=on_basis)
    if figure is None:
        return None
    fixed, percent = tolerance or registry.tolerance_settings()
    return ValueCheck(basis=on_basis, expected=expected, authorised=authorised, marketplace=figure,
                      tolerance=registry.tolerance_for(figure, fixed=fixed, percent=percent),
                      currency_mismatch=all(currencies) and currencies[0] != currencies[1])


def value_check(*, portal_return, expectation: PartialRefund | None,
                tolerance: tuple[str, str] | None = None) -> ValueCheck | None:
    """The portal's authorised value (or, without one, the value of what came back) against
    the marketplace's refund figure on the connection's basis. None when either is unknown."""
    mreturn = portal_return.marketplace_return
    if mreturn is None:
        return None
    on_basis = basis(portal_return.connection)
    if portal_return.authorized_refund is not None:
        expected, authorised = portal_return.authorized_refund, True
    elif expectation is not None and expectation.lines:
        expected, authorised = expectation.total, False
        if on_basis == TOTAL:
            expected = expectation.to_total(expected)
    else:
        return None
    return value_compare(expected=expected, authorised=authorised, subtotal=mreturn.refund_subtotal,
                         total=mreturn.refund_total, on_basis=on_basis,
                         currencies=(portal_return.currency, mreturn.currency), tolerance=tolerance)


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


def marketplace_deadline(marketplace_return):
    """When the marketplace decides a delivered parcel by itself (it then refunds in full),
    while it waits for the seller's receipt decision; else None."""
    if marketplace_return is None or marketplace_return.stage != Stage.RECEIVED:
        return None
    return marketplace_return.next_action_deadline


def marketplace_refunded(marketplace_return) -> Decimal:
    """What the marketplace has refunded on this return so far (succeeded refunds)."""
    from returnsync.models import Refund

    kinds = registry.kinds(role=ConnectorRole.MARKETPLACE)
    total = (Refund.objects.filter(marketplace_return=marketplace_return, status=RefundStatus.SUCCEEDED,
                                   connection__kind__in=kinds).aggregate(total=Sum("amount"))["total"])
    return cents(total)


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
    if (pr.connection.options or {}).get("authorized_refund_required") and pr.authorized_refund is None:
        return GateDecision(ReleaseState.AWAITING_AUTHORISATION,
                            f"{pr.connection.get_kind_display()} has not authorised the refund value yet.")
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


# --- settling a partial refund -----------------------------------------------------------------

REFUND, RECOVER, REJECT, SETTLED = "refund", "recover", "reject", "settled"


@dataclass(frozen=True)
class Settlement:
    """Where a partial return's money stands: what is due in all, what the marketplace has
    refunded so far, and what a person must do about the difference."""

    due: Decimal  # like the marketplace's refund figure (tax and shipping share included)
    refunded: Decimal  # succeeded marketplace refunds on the return so far
    currency: str
    action: str  # REFUND (the rest by hand or as an offer), RECOVER (paid too much), REJECT (nothing due), SETTLED
    tolerance: Decimal

    @property
    def remaining(self) -> Decimal:
        return max(self.due - self.refunded, ZERO)

    @property
    def to_recover(self) -> Decimal:
        return max(self.refunded - self.due, ZERO)

    @property
    def amount(self) -> Decimal | None:
        """The amount to act on: to refund, or to recover (None: nothing to pay either way)."""
        if self.action == REFUND:
            return self.remaining
        if self.action == RECOVER:
            return self.to_recover
        return None

    def describe(self) -> str:
        c = self.currency
        if self.action == RECOVER:
            return f"recover {self.to_recover} {c} (TikTok refunded {self.refunded}, {self.due} was due)"
        if self.action == REJECT:
            return "nothing is due: reject the refund in Seller Center"
        if self.action == SETTLED:
            return f"settled: {self.refunded} {c} refunded, {self.due} due"
        if self.refunded > 0:
            return f"refund the remaining {self.remaining} {c} ({self.refunded} of {self.due} refunded)"
        return f"refund {self.due} {c} by hand"


def settlement_judge(*, due: Decimal, refunded: Decimal, currency: str, marketplace_open: bool,
                     tolerance_settings: tuple[str, str] | None = None) -> Settlement:
    """The one rule for a partial return's money: matched within the tolerance and either
    paid or closed → settled; paid more than due → recover; less → refund the rest; nothing
    due and nothing paid while the marketplace still waits → reject (never "refund 0.00")."""
    due, refunded = cents(due), cents(refunded)
    fixed, percent = tolerance_settings or registry.tolerance_settings()
    tolerance = registry.tolerance_for(due, fixed=fixed, percent=percent)
    if refunded - due > tolerance:
        action = RECOVER
    elif due - refunded > tolerance:
        action = REFUND
    elif refunded > 0 or not marketplace_open:
        action = SETTLED
    else:
        action = REJECT
    return Settlement(due=due, refunded=refunded, currency=currency, action=action, tolerance=tolerance)


def settlement_for(*, portal_return, expectation: PartialRefund | None = None) -> Settlement | None:
    """The settlement of a flagged partial return (None when it is not flagged)."""
    from returnsync.money import partial_refund_compute

    pr = portal_return
    if pr.partial_refund_amount is None:
        return None
    expectation = expectation or partial_refund_compute(portal_return=pr)
    mreturn = pr.marketplace_return
    refunded = marketplace_refunded(mreturn) if mreturn is not None else ZERO
    return settlement_judge(due=expectation.due_total, refunded=refunded,
                            currency=expectation.currency or (mreturn.currency if mreturn else ""),
                            marketplace_open=mreturn is not None and mreturn.stage not in CLOSED_STAGES)
