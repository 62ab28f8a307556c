"""Money arithmetic shared by every connector and the exception engine.

One rule for splitting an amount: ``allocate`` (largest remainder), so parts always sum
exactly to the whole, whether the parts are a bundle's components or a line's accepted
and withheld units. The partial-refund computation lives here too, so the ZigZag flag
on a return and the finance exception's per-line amounts are the same numbers.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, ROUND_HALF_UP, Decimal

from returnsync.choices import Grade, Stage

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# A line's units count towards the refund when they came back and were not graded as
# failing; "not graded yet" counts, so a receipt alone can already flag a short parcel.
REFUNDABLE_GRADES = frozenset({Grade.SELLABLE, Grade.PENDING})
RECEIVED_STAGES = frozenset({Stage.RECEIVED, Stage.INSPECTED, Stage.REFUNDED, Stage.CLOSED})


def cents(value) -> Decimal:
    """An amount to the cent (database sums can come back with many places on SQLite)."""
    return Decimal(str(value if value is not None else 0)).quantize(CENT, rounding=ROUND_HALF_UP)


def allocate(total: Decimal, weights: Sequence[Decimal | int], *, quantum: Decimal = CENT) -> list[Decimal]:
    """Split ``total`` in proportion to ``weights``, rounded to ``quantum``, so the parts
    sum exactly to ``total`` (largest remainder; ties go to the earlier part).

    >>> allocate(Decimal("100.00"), [1, 1, 1])
    [Decimal('33.34'), Decimal('33.33'), Decimal('33.33')]
    """
    total = Decimal(total)
    weights = [Decimal(w) for w in weights]
    if not weights:
        return []
    if any(w < 0 for w in weights):
        raise ValueError("weights must not be negative")
    weight_sum = sum(weights)
    if weight_sum == 0:
        return [total.quantize(quantum)] + [Decimal(0).quantize(quantum)] * (len(weights) - 1)
    total = total.quantize(quantum)
    exact = [total * w / weight_sum for w in weights]
    parts = [e.quantize(quantum, rounding=ROUND_DOWN) for e in exact]
    leftover = int(((total - sum(parts)) / quantum).to_integral_value())
    order = sorted(range(len(parts)), key=lambda i: (-(exact[i] - parts[i]), i))
    for i in order[:leftover]:
        parts[i] += quantum
    return parts


def bundle_component_totals(*, bundle_price: Decimal, components: Iterable) -> dict[str, Decimal]:
    """What each component of a bundle is worth: ``bundle_price`` split by the mapping's
    price shares (``BundleComponent`` rows or anything with ``component_sku`` and
    ``price_share``); the values sum exactly to ``bundle_price``."""
    components = list(components)
    parts = allocate(Decimal(bundle_price), [c.price_share for c in components])
    return {c.component_sku: part for c, part in zip(components, parts)}


@dataclass
class PartialRefundLine:
    line_id: str
    sku: str
    product_name: str
    expected_quantity: int
    received_quantity: int
    grade: str
    line_total: Decimal  # what the line is worth in full
    refund_amount: Decimal  # the part the buyer gets back
    withheld_amount: Decimal  # line_total - refund_amount
    reason: str  # why anything is withheld; "" when the line is whole
    bundle_sku: str = ""
    price_share: Decimal | None = None


@dataclass
class PartialRefund:
    """What a portal return is worth back, per line: the one computation behind the
    partial-refund task, the refund gate and the reconciliation.

    Amounts on the lines are the items' value (their sale price; a bundle component its
    share), the basis the portals value items on. ``due_total`` is the part that comes
    back expressed like the marketplace's refund figure (tax and shipping included), so
    it compares with what the marketplace refunded."""

    currency: str
    lines: list[PartialRefundLine] = field(default_factory=list)
    # SKUs the portal returned that match nothing the marketplace return covers (a bundle
    # component with no mapping): their value is unknown, so nothing is judged on them.
    unresolved: list[str] = field(default_factory=list)
    # Units received but not inspected yet.
    pending_units: int = 0
    marketplace_total: Decimal | None = None  # the marketplace's refund figure for the whole return

    @property
    def total(self) -> Decimal:
        return sum((line.line_total for line in self.lines), ZERO)

    @property
    def refund_amount(self) -> Decimal:
        return sum((line.refund_amount for line in self.lines), ZERO)

    @property
    def withheld_amount(self) -> Decimal:
        return sum((line.withheld_amount for line in self.lines), ZERO)

    @property
    def is_partial(self) -> bool:
        return any(line.withheld_amount > 0 or line.reason for line in self.lines)

    @property
    def short_lines(self) -> list[PartialRefundLine]:
        return [line for line in self.lines if line.received_quantity < line.expected_quantity]

    @property
    def failed_lines(self) -> list[PartialRefundLine]:
        return [line for line in self.lines if line.received_quantity and line.grade not in REFUNDABLE_GRADES]

    def to_total(self, amount: Decimal) -> Decimal:
        """An items' value as the same share of the marketplace's refund figure (so tax and
        shipping come with it); the value itself when there is no figure to scale by."""
        if self.marketplace_total is None or self.total <= 0:
            return Decimal(amount).quantize(CENT)
        return (self.marketplace_total * Decimal(amount) / self.total).quantize(CENT, rounding=ROUND_HALF_UP)

    @property
    def due_total(self) -> Decimal:
        """What the buyer should get back in all, like the marketplace's refund figure."""
        return self.to_total(self.refund_amount)

    def as_json(self) -> dict:
        """JSON-safe form stored on the return and in exception evidence (amounts as strings)."""
        def clean(value):
            return str(value) if isinstance(value, Decimal) else value

        return {
            "currency": self.currency,
            "total": str(self.total),
            "refund_amount": str(self.refund_amount),
            "withheld_amount": str(self.withheld_amount),
            "due_total": str(self.due_total),
            "marketplace_total": None if self.marketplace_total is None else str(self.marketplace_total),
            "unresolved": list(self.unresolved),
            "lines": [{k: clean(v) for k, v in asdict(line).items()} for line in self.lines],
        }


def _line_reason(expected: int, received: int, grade: str) -> str:
    reasons = []
    if received < expected:
        reasons.append(f"{received} of {expected} received")
    if received and grade not in REFUNDABLE_GRADES:
        reasons.append(f"graded {Grade(grade).label.lower() if grade in Grade.values else grade}")
    return "; ".join(reasons)


def _split(line_total: Decimal, expected: int, refundable: int) -> tuple[Decimal, Decimal]:
    if not expected:
        return line_total, ZERO
    refund, withheld = allocate(line_total, [refundable, expected - refundable])
    return refund, withheld


@dataclass
class _Due:
    """One SKU the marketplace return covers: how many units, worth how much in all."""

    sku: str
    name: str
    units: int = 0
    value: Decimal = ZERO
    bundle_sku: str = ""
    price_share: Decimal | None = None
    received: int = 0
    refundable: int = 0
    grades: set = field(default_factory=set)
    portal_line_ids: list = field(default_factory=list)


def _bundles(skus) -> dict:
    from returnsync.models import BundleMapping

    skus = {s for s in skus if s}
    if not skus:
        return {}
    return {b.bundle_sku: b for b in BundleMapping.objects.filter(bundle_sku__in=skus, is_active=True)
            .prefetch_related("components")}


def _due_from_marketplace(marketplace_return) -> dict[str, _Due] | None:
    """What the marketplace return covers, per SKU: its lines are one per unit; a bundle
    sold as one SKU counts as its mapped components (each its share of the bundle price).
    None when the return lists no lines."""
    from returnsync.models import OrderLine

    marketplace_lines = list(marketplace_return.lines.all())
    if not marketplace_lines:
        return None
    order_lines = {}
    if marketplace_return.order_id:
        order_lines = {ol.line_id: ol for ol in OrderLine.objects.filter(order_id=marketplace_return.order_id)}
    sold = [(order_lines.get(ml.order_line_id), ml) for ml in marketplace_lines]
    bundles = _bundles(ol.seller_sku if ol else ml.seller_sku for ol, ml in sold)
    due: dict[str, _Due] = {}
    for order_line, line in sold:
        sku = (order_line.seller_sku if order_line else line.seller_sku) or f"line {line.line_id}"
        name = (order_line.product_name if order_line else line.product_name) or sku
        price = order_line.sale_price if order_line else (line.refund_amount or ZERO)
        if sku in bundles:
            components = list(bundles[sku].components.all())
            totals = bundle_component_totals(bundle_price=price, components=components)
            for comp in components:
                item = due.setdefault(comp.component_sku, _Due(comp.component_sku, f"{name} / {comp.component_sku}",
                                                               bundle_sku=sku, price_share=comp.price_share))
                item.units += comp.quantity
                item.value += totals[comp.component_sku]
            continue
        item = due.setdefault(sku, _Due(sku, name))
        item.units += 1
        item.value += price
    return due


def _from_marketplace(portal_return, lines, due: dict[str, _Due], currency: str) -> PartialRefund:
    """Portal lines matched against what the marketplace return covers: a portal line by
    its SKU, or, when it names a bundle SKU, by that bundle's components."""
    result = PartialRefund(currency=currency)
    bundles = _bundles(line.sku for line in lines if line.sku not in due)
    for line in lines:
        if line.sku in due:
            parts = [(due[line.sku], 1)]
        elif line.sku in bundles and all(c.component_sku in due for c in bundles[line.sku].components.all()):
            parts = [(due[c.component_sku], c.quantity) for c in bundles[line.sku].components.all()]
        else:
            if line.received_quantity or line.expected_quantity:
                result.unresolved.append(line.sku or line.line_id)
            continue
        for item, per_unit in parts:
            item.received += line.received_quantity * per_unit
            if line.received_quantity and line.grade in REFUNDABLE_GRADES:
                item.refundable += line.received_quantity * per_unit
            if line.received_quantity:
                item.grades.add(line.grade)
                if line.grade == Grade.PENDING:
                    result.pending_units += line.received_quantity * per_unit
            item.portal_line_ids.append(line.line_id)
    for item in due.values():
        received, refundable = min(item.received, item.units), min(item.refundable, item.units)
        failing = sorted(g for g in item.grades if g not in REFUNDABLE_GRADES)
        grade = failing[0] if failing else (Grade.PENDING if Grade.PENDING in item.grades or not received
                                            else Grade.SELLABLE)
        line_total = item.value.quantize(CENT)
        refund, withheld = _split(line_total, item.units, refundable)
        result.lines.append(PartialRefundLine(
            line_id=item.portal_line_ids[0] if len(item.portal_line_ids) == 1 else item.sku, sku=item.sku,
            product_name=item.name[:300], expected_quantity=item.units, received_quantity=received,
            grade=str(grade), line_total=line_total, refund_amount=refund, withheld_amount=withheld,
            reason=_line_reason(item.units, received, grade), bundle_sku=item.bundle_sku,
            price_share=item.price_share,
        ))
    return result


def _from_portal_lines(portal_return, lines, currency: str) -> PartialRefund:
    """No marketplace return to go by: each portal line is worth its ``unit_price`` ×
    ``expected_quantity``, or its bundle component's share of the order line's price."""
    bundles = _bundles(line.order_line.seller_sku for line in lines if line.order_line_id)
    result = PartialRefund(currency=currency)
    for line in lines:
        unit = line.unit_price if line.unit_price is not None else ZERO
        line_total = (unit * line.expected_quantity).quantize(CENT)
        bundle_sku, share = "", None
        order_line = line.order_line if line.order_line_id else None
        if order_line is not None and order_line.seller_sku in bundles and line.sku != order_line.seller_sku:
            components = list(bundles[order_line.seller_sku].components.all())
            totals = bundle_component_totals(bundle_price=order_line.sale_price, components=components)
            if line.sku in totals:
                bundle_sku = order_line.seller_sku
                share = next(c.price_share for c in components if c.component_sku == line.sku)
                line_total = totals[line.sku]
        if line.received_quantity and line.grade == Grade.PENDING:
            result.pending_units += line.received_quantity
        refundable = line.received_quantity if line.grade in REFUNDABLE_GRADES else 0
        refund, withheld = _split(line_total, line.expected_quantity, refundable)
        result.lines.append(PartialRefundLine(
            line_id=line.line_id, sku=line.sku, product_name=line.product_name,
            expected_quantity=line.expected_quantity, received_quantity=line.received_quantity,
            grade=line.grade, line_total=line_total, refund_amount=refund, withheld_amount=withheld,
            reason=_line_reason(line.expected_quantity, line.received_quantity, line.grade),
            bundle_sku=bundle_sku, price_share=share,
        ))
    return result


def partial_refund_compute(*, portal_return) -> PartialRefund:
    """The refund a received portal return is worth, per line.

    What the linked marketplace (TikTok) return covers is the reference for what was due:
    one unit per TikTok return line, a bundle sold as one SKU as its mapped components,
    each valued at its share of the bundle's sale price (``allocate``: the components of
    one bundle sum exactly to its price). A unit the portal does not list counts as not
    returned. Without a marketplace return the portal's own lines are the reference. The
    buyer gets back the units received and not failed at grading ("not graded yet"
    counts, so a receipt alone already flags a short parcel); the rest is withheld, split
    with ``allocate`` too, so refund + withheld == line total to the cent.
    """
    lines = list(portal_return.lines.select_related("order_line").all())
    mreturn = portal_return.marketplace_return if portal_return.marketplace_return_id else None
    currency = portal_return.currency or (mreturn.currency if mreturn else "") or next(
        (ln.currency for ln in lines if ln.currency), "")
    due = _due_from_marketplace(mreturn) if mreturn is not None else None
    if due is None:
        return _from_portal_lines(portal_return, lines, currency)
    result = _from_marketplace(portal_return, lines, due, currency)
    result.marketplace_total = mreturn.refund_total  # what those same lines are refunded at, in all
    return result
