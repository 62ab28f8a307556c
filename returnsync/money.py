"""Money arithmetic shared by every connector and the exception engine.

One rule for splitting an amount: ``allocate`` (largest remainder), so parts always sum
exactly to the whole, whether the parts are a bundle's components or a line's accepted
and withheld units. The partial-refund computation lives here too, so the ZigZag flag
on a return and the finance exception's per-line amounts are the same numbers.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, field
from decimal import ROUND_DOWN, Decimal

from returnsync.choices import Grade, Stage

CENT = Decimal("0.01")
ZERO = Decimal("0.00")
# A line's units count towards the refund when they came back and were not graded as
# failing; "not graded yet" counts, so a receipt alone can already flag a short parcel.
REFUNDABLE_GRADES = frozenset({Grade.SELLABLE, Grade.PENDING})
RECEIVED_STAGES = frozenset({Stage.RECEIVED, Stage.INSPECTED, Stage.REFUNDED, Stage.CLOSED})


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
    currency: str
    lines: list[PartialRefundLine] = field(default_factory=list)

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

    def as_json(self) -> dict:
        """JSON-safe form stored on the return and in exception evidence (amounts as strings)."""
        def clean(value):
            return str(value) if isinstance(value, Decimal) else value

        return {
            "currency": self.currency,
            "total": str(self.total),
            "refund_amount": str(self.refund_amount),
            "withheld_amount": str(self.withheld_amount),
            "lines": [{k: clean(v) for k, v in asdict(line).items()} for line in self.lines],
        }


def _line_reason(expected: int, received: int, grade: str) -> str:
    reasons = []
    if received < expected:
        reasons.append(f"{received} of {expected} received")
    if received and grade not in REFUNDABLE_GRADES:
        reasons.append(f"graded {Grade(grade).label.lower() if grade in Grade.values else grade}")
    return "; ".join(reasons)


def partial_refund_compute(*, portal_return) -> PartialRefund:
    """The refund a received portal return is worth, per line.

    A line is worth its ``unit_price`` × ``expected_quantity``; when its ``order_line`` is a
    bundle sold as one SKU (an active ``BundleMapping``) and the line is one component,
    it is worth that component's share of the bundle's sale price (``allocate``: the
    components of one bundle sum exactly to its price). The buyer gets back the units
    received and not failed at grading; the rest is withheld. Amounts are split with
    ``allocate`` too, so refund + withheld == line total to the cent.
    """
    from returnsync.models import BundleMapping

    lines = list(portal_return.lines.select_related("order_line").all())
    bundle_skus = {line.order_line.seller_sku for line in lines if line.order_line_id and line.order_line.seller_sku}
    bundles = {
        b.bundle_sku: b for b in BundleMapping.objects.filter(bundle_sku__in=bundle_skus, is_active=True)
        .prefetch_related("components")
    }
    result = PartialRefund(currency=portal_return.currency or next((ln.currency for ln in lines if ln.currency), ""))
    for line in lines:
        unit = line.unit_price if line.unit_price is not None else ZERO
        line_total = (unit * line.expected_quantity).quantize(CENT)
        bundle_sku, share = "", None
        order_line = line.order_line if line.order_line_id else None
        if order_line is not None and order_line.seller_sku in bundles and line.sku != order_line.seller_sku:
            bundle = bundles[order_line.seller_sku]
            components = list(bundle.components.all())
            totals = bundle_component_totals(bundle_price=order_line.sale_price, components=components)
            if line.sku in totals:
                bundle_sku = bundle.bundle_sku
                share = next(c.price_share for c in components if c.component_sku == line.sku)
                line_total = totals[line.sku]
        refundable = line.received_quantity if line.grade in REFUNDABLE_GRADES else 0
        refund, withheld = allocate(line_total, [refundable, line.expected_quantity - refundable]) \
            if line.expected_quantity else (line_total, ZERO)
        result.lines.append(PartialRefundLine(
            line_id=line.line_id, sku=line.sku, product_name=line.product_name,
            expected_quantity=line.expected_quantity, received_quantity=line.received_quantity,
            grade=line.grade, line_total=line_total, refund_amount=refund, withheld_amount=withheld,
            reason=_line_reason(line.expected_quantity, line.received_quantity, line.grade),
            bundle_sku=bundle_sku, price_share=share,
        ))
    return result
