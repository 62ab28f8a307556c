"""Finance reads: what TikTok refunded against what was due, per return, per day, and
the money that needs a person. Every counter and figure on the finance page comes from
here, so they cannot disagree.

Per portal return (``reconciliation_rows``): the expected refund (``PortalReturn.
expected_refund``: the portal's authorised value, else the value of what came back, like
TikTok's refund figure — the same computation as the partial-refund task) against the
succeeded TikTok refunds, in one of four buckets:

- **matched**: TikTok refunded what was due (within the tolerance), or nothing was due and
  TikTok's return is closed;
- **pending**: the parcel is not back yet, or the refund is still to come;
- **mismatched**: TikTok refunded less than was due;
- **over_refunded**: TikTok refunded more than was due, or refunded before anything came back.

``money_tasks`` lists the returns where money waits for a person: a partial return to
settle (refund the rest, recover an over-refund, or reject when nothing is due) and a
release held because the values differ.
"""
from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal

from django.db.models import DateTimeField, DecimalField, OuterRef, Q, Subquery, Sum, Value
from django.db.models.functions import Coalesce, TruncDate
from django.utils import timezone

from returnsync import refund_gate, registry
from returnsync.choices import RefundStatus, ReleaseState, Stage
from returnsync.models import PortalReturn, Refund
from returnsync.money import cents
from returnsync.registry import ConnectorRole

MATCHED, PENDING, MISMATCHED, OVER_REFUNDED = "matched", "pending", "mismatched", "over_refunded"
BUCKETS = (MATCHED, PENDING, MISMATCHED, OVER_REFUNDED)
BUCKET_LABELS = {MATCHED: "Matched", PENDING: "Pending", MISMATCHED: "Under-refunded",
                 OVER_REFUNDED: "Over-refunded"}
ZERO = Decimal("0.00")


def reconciliation_bucket(*, refunded: Decimal, expected: Decimal | None, marketplace_open: bool,
                          tolerance: Decimal) -> str:
    """One return's bucket: TikTok's succeeded refunds against what was due (None: not known
    yet, the parcel is not back)."""
    if refunded <= 0:
        if expected is not None and expected <= tolerance and not marketplace_open:
            return MATCHED  # nothing was due and TikTok closed the return without paying
        return PENDING
    if expected is None or refunded - expected > tolerance:
        return OVER_REFUNDED
    if expected - refunded > tolerance:
        return MISMATCHED
    return MATCHED


@dataclass(frozen=True)
class ReturnMoney:
    """One portal return in the reconciliation."""

    portal_return_id: int
    external_id: str
    connection_id: int
    connection_name: str
    system: str
    currency: str
    day: date
    order_ref: str
    return_ref: str
    marketplace_return_id: int | None
    expected: Decimal | None
    refunded: Decimal
    received: bool
    release_state: str
    bucket: str

    @property
    def difference(self) -> Decimal:
        return self.refunded - (self.expected or ZERO)


def _succeeded_tiktok_refunds(**match):
    kinds = registry.kinds(role=ConnectorRole.MARKETPLACE)
    refunds = (Refund.objects.filter(status=RefundStatus.SUCCEEDED, connection__kind__in=kinds, **match)
               .order_by().values(*match).annotate(total=Sum("amount")).values("total")[:1])
    return Coalesce(Subquery(refunds), Value(ZERO), output_field=DecimalField(max_digits=14, decimal_places=2))


def reconciliation_rows(*, since: date, until: date, connection_id: int | None = None,
                        currency: str | None = None, bucket: str | None = None,
                        day: date | None = None) -> list[ReturnMoney]:
    """Every portal return of the period (the day of its receipt, else of its TikTok return's
    creation, else of our record; local dates), with its money and bucket. One query."""
    tz = timezone.get_current_timezone()
    queryset = (
        PortalReturn.objects.annotate(
            when=Coalesce("received_at", "marketplace_return__source_created_at", "created_at",
                          output_field=DateTimeField()))
        .annotate(day=TruncDate("when", tzinfo=tz),
                  by_return=_succeeded_tiktok_refunds(marketplace_return=OuterRef("marketplace_return_id")),
                  by_order=_succeeded_tiktok_refunds(order_ref=OuterRef("order_ref"), marketplace_return=None))
        .filter(day__gte=day or since, day__lte=day or until)
        .order_by("day", "id")
    )
    if connection_id:
        queryset = queryset.filter(connection_id=connection_id)
    if currency is not None:
        queryset = queryset.filter(currency=currency)
    fixed, percent = registry.tolerance_settings()
    rows = []
    for row in queryset.values("id", "external_id", "connection_id", "connection__name", "connection__kind",
                               "currency", "day", "order_ref", "return_ref", "marketplace_return_id",
                               "marketplace_return__stage", "expected_refund", "received_at", "release_state",
                               "by_return", "by_order"):
        linked = row["marketplace_return_id"] is not None
        refunded = cents(row["by_return"] if linked else row["by_order"])
        expected = row["expected_refund"]
        which = reconciliation_bucket(
            refunded=refunded, expected=expected,
            marketplace_open=linked and row["marketplace_return__stage"] not in refund_gate.CLOSED_STAGES,
            tolerance=registry.tolerance_for(expected or refunded, fixed=fixed, percent=percent))
        if bucket and which != bucket:
            continue
        rows.append(ReturnMoney(
            portal_return_id=row["id"], external_id=row["external_id"], connection_id=row["connection_id"],
            connection_name=row["connection__name"], system=row["connection__kind"], currency=row["currency"],
            day=row["day"], order_ref=row["order_ref"], return_ref=row["return_ref"],
            marketplace_return_id=row["marketplace_return_id"], expected=expected, refunded=refunded,
            received=row["received_at"] is not None, release_state=row["release_state"], bucket=which))
    return rows


@dataclass
class BucketMoney:
    count: int = 0
    expected: Decimal = ZERO
    refunded: Decimal = ZERO

    @property
    def difference(self) -> Decimal:
        return self.refunded - self.expected

    def add(self, item: ReturnMoney) -> None:
        self.count += 1
        self.expected += item.expected or ZERO
        self.refunded += item.refunded


@dataclass
class ReconciliationRow:
    """One day × portal connection × currency (or, for totals, one currency)."""

    day: date | None
    connection_id: int | None
    connection_name: str
    currency: str
    buckets: dict[str, BucketMoney] = field(default_factory=lambda: {b: BucketMoney() for b in BUCKETS})
    received: int = 0

    def add(self, item: ReturnMoney) -> None:
        self.buckets[item.bucket].add(item)
        self.received += item.received

    @property
    def counts(self) -> dict[str, int]:
        return {b: money.count for b, money in self.buckets.items()}

    @property
    def total(self) -> int:
        return sum(self.counts.values())

    @property
    def expected_total(self) -> Decimal:
        return sum((m.expected for m in self.buckets.values()), ZERO)

    @property
    def refunded_total(self) -> Decimal:
        return sum((m.refunded for m in self.buckets.values()), ZERO)

    @property
    def difference(self) -> Decimal:
        return self.refunded_total - self.expected_total


@dataclass
class Reconciliation:
    rows: list[ReconciliationRow]
    totals: list[ReconciliationRow]  # one per currency: money of two currencies is never summed


def reconciliation_report(*, since: date, until: date, connection_id: int | None = None) -> Reconciliation:
    """The period per day × connection × currency (newest first), and totals per currency.
    Buckets partition the returns, so their counts and money add up to the totals."""
    groups: dict[tuple, ReconciliationRow] = {}
    totals: dict[str, ReconciliationRow] = {}
    for item in reconciliation_rows(since=since, until=until, connection_id=connection_id):
        key = (item.day, item.connection_id, item.currency)
        row = groups.get(key) or groups.setdefault(key, ReconciliationRow(
            day=item.day, connection_id=item.connection_id, connection_name=item.connection_name,
            currency=item.currency))
        row.add(item)
        totals.setdefault(item.currency, ReconciliationRow(day=None, connection_id=None, connection_name="All",
                                                           currency=item.currency)).add(item)
    rows = sorted(groups.values(), key=lambda r: (r.day, r.connection_name, r.currency), reverse=True)
    return Reconciliation(rows=rows, totals=[totals[c] for c in sorted(totals)])


# --- money waiting for a person ----------------------------------------------------------------


@dataclass(frozen=True)
class MoneyTask:
    portal_return: PortalReturn
    action: str  # refund_gate.REFUND / RECOVER / REJECT, or "check_value"
    text: str
    amount: Decimal | None
    due: Decimal | None
    refunded: Decimal
    currency: str
    tiktok_deadline: datetime | None


CHECK_VALUE = "check_value"
TASK_LABELS = {refund_gate.REFUND: "to refund", refund_gate.RECOVER: "to recover",
               refund_gate.REJECT: "to reject (nothing due)", CHECK_VALUE: "values to check"}


def money_tasks(*, connection_id: int | None = None) -> list[MoneyTask]:
    """Portal returns whose money waits for a person, most urgent first (TikTok's own
    deadline, then receipt): the partial returns not settled (the same judge as the
    partial-refund task) and the releases held because the values differ. One query."""
    partial = Q(partial_refund_amount__isnull=False) & ~Q(stage__in=(Stage.CANCELLED, Stage.REJECTED))
    rows = (PortalReturn.objects.filter(partial | Q(release_state=ReleaseState.HELD_VALUE))
            .select_related("connection", "marketplace_return")
            .annotate(refunded=_succeeded_tiktok_refunds(marketplace_return=OuterRef("marketplace_return_id"))))
    if connection_id:
        rows = rows.filter(connection_id=connection_id)
    tolerance = registry.tolerance_settings()
    tasks = []
    for pr in rows:
        mreturn = pr.marketplace_return
        deadline = refund_gate.marketplace_deadline(mreturn)
        currency = pr.currency or (mreturn.currency if mreturn else "")
        if pr.partial_refund_amount is not None:
            detail = pr.partial_refund_detail or {}
            settlement = refund_gate.settlement_judge(
                due=Decimal(str(detail.get("due_total") or detail.get("refund_amount") or "0")),
                refunded=cents(pr.refunded) if mreturn else ZERO, currency=detail.get("currency") or currency,
                marketplace_open=mreturn is not None and mreturn.stage not in refund_gate.CLOSED_STAGES,
                tolerance_settings=tolerance)
            if settlement.action == refund_gate.SETTLED:
                continue
            tasks.append(MoneyTask(pr, settlement.action, settlement.describe(), settlement.amount, settlement.due,
                                   settlement.refunded, settlement.currency, deadline))
        else:
            tasks.append(MoneyTask(pr, CHECK_VALUE, pr.release_note, None, pr.expected_refund, cents(pr.refunded),
                                   currency, deadline))
    far = datetime.max.replace(tzinfo=timezone.get_current_timezone())
    tasks.sort(key=lambda t: (t.tiktok_deadline or far, t.portal_return.received_at or far, t.portal_return.pk))
    return tasks


def money_task_counts(tasks: Iterable[MoneyTask]) -> dict[str, int]:
    counts = dict.fromkeys(TASK_LABELS, 0)
    for task in tasks:
        counts[task.action] += 1
    return counts
