"""Service levels: how the integration measures against what the marketplace requires.

Three clocks, each started by a fact and stopped by another, per return:

- **Request answered**: TikTok asked the seller to approve or reject (the return's first
  snapshot in the ``requested`` stage, with TikTok's own deadline); it stops when TikTok
  shows the request answered (by us, or in Seller Center). On time = before the deadline;
  a request TikTok approved by itself at its deadline is late.
- **Receipt written back**: the refund gate could release the return (received, and
  inspected where the portal's policy waits for inspection); it stops when TikTok took the
  received-package decision. On time = within the status-drift rule's threshold. Returns
  the gate holds on purpose, or whose portal releases the refund itself, are not counted.
- **Refund paid**: the parcel reached the warehouse; it stops at TikTok's first refund.
  On time = within the refund-lag rule's threshold (the marketplace's service level).

The thresholds are the rules' own (``exceptions_app/rules``): the page and the exceptions
that fire on a miss cannot disagree. Each clock counts on the day it started, in the
current time zone, for the TikTok shop and the portal connection it belongs to.
"""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from django.db.models import Min, OuterRef, Q, Subquery
from django.utils import timezone
from django.utils.dateparse import parse_datetime

from exceptions_app.rules import rule_for
from returnsync.choices import RefundStatus, ReleaseState, Stage, System, WriteBackAction

ON_TIME, LATE, OVERDUE, OPEN = "on_time", "late", "overdue", "open"
OUTCOME_LABELS = {ON_TIME: "On time", LATE: "Late", OVERDUE: "Overdue, still open", OPEN: "Open, in time"}
NO_PORTAL = "No portal record"
WORST_LISTED = 10


def span_text(value: timedelta) -> str:
    """A span to the minute, in its two largest units: "2 d 3 h", "1 h 57 min", "4 min"."""
    minutes = max(0, int(value.total_seconds() // 60))
    days, rest = divmod(minutes, 60 * 24)
    hours, minutes = divmod(rest, 60)
    if days:
        return f"{days} d {hours} h" if hours else f"{days} d"
    if hours:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    return f"{minutes} min"


@dataclass(frozen=True)
class Clock:
    """One return's clock on one measure."""

    return_pk: int
    return_id: str
    shop: str
    portal: str
    started_at: datetime
    due_at: datetime
    stopped_at: datetime | None

    def outcome(self, now: datetime) -> str:
        if self.stopped_at is not None:
            return ON_TIME if self.stopped_at < self.due_at else LATE
        return OVERDUE if now >= self.due_at else OPEN

    def lateness(self, now: datetime) -> timedelta:
        return (self.stopped_at or now) - self.due_at


@dataclass
class Tally:
    """Counts of one group of clocks; ``share`` is on time over those decided or overdue."""

    on_time: int = 0
    late: int = 0
    overdue: int = 0
    open: int = 0

    def add(self, outcome: str) -> None:
        setattr(self, outcome, getattr(self, outcome) + 1)

    @property
    def measured(self) -> int:
        return self.on_time + self.late + self.overdue

    @property
    def total(self) -> int:
        return self.measured + self.open

    @property
    def share(self) -> float | None:
        return self.on_time / self.measured if self.measured else None


@dataclass
class Measure:
    code: str
    label: str
    target: str
    total: Tally = field(default_factory=Tally)
    by_day: dict[date, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_shop: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    by_portal: dict[str, Tally] = field(default_factory=lambda: defaultdict(Tally))
    worst: list[tuple[Clock, str, str]] = field(default_factory=list)  # (clock, outcome, "3 h 12 min")
    not_counted: dict[str, int] = field(default_factory=dict)

    def fill(self, clocks: Iterable[Clock], *, now: datetime) -> Measure:
        missed = []
        for clock in clocks:
            outcome = clock.outcome(now)
            for tally in (self.total, self.by_day[timezone.localtime(clock.started_at).date()],
                          self.by_shop[clock.shop], self.by_portal[clock.portal]):
                tally.add(outcome)
            if outcome in (LATE, OVERDUE):
                missed.append((clock, outcome, clock.lateness(now)))
        missed.sort(key=lambda item: item[2], reverse=True)
        self.worst = [(clock, outcome, span_text(late)) for clock, outcome, late in missed[:WORST_LISTED]]
        self.by_day = dict(sorted(self.by_day.items()))
        self.by_shop = dict(sorted(self.by_shop.items()))
        self.by_portal = dict(sorted(self.by_portal.items()))
        return self


@dataclass(frozen=True)
class Window:
    since: datetime
    until: datetime  # exclusive
    shop_id: int | None = None
    portal_id: int | None = None

    @classmethod
    def of_days(cls, since: date, until: date, *, shop_id=None, portal_id=None) -> Window:
        start = timezone.make_aware(datetime.combine(since, datetime.min.time()))
        end = timezone.make_aware(datetime.combine(until + timedelta(days=1), datetime.min.time()))
        return cls(start, end, shop_id, portal_id)


def _portals_by_return(return_pks: Iterable[int]) -> dict[int, tuple[int, str]]:
    """TikTok return pk → (portal connection pk, its name) of its portal record."""
    from returnsync.models import PortalReturn

    found: dict[int, tuple[int, str]] = {}
    pks = list(return_pks)
    for start in range(0, len(pks), 500):
        rows = (PortalReturn.objects.filter(marketplace_return_id__in=pks[start:start + 500])
                .order_by("marketplace_return_id", "id")
                .values_list("marketplace_return_id", "connection_id", "connection__name"))
        for return_pk, connection_pk, name in rows:
            found.setdefault(return_pk, (connection_pk, name))
    return found


def request_clocks(window: Window) -> tuple[list[Clock], dict[str, int]]:
    """TikTok requests created in the window, from the returns' TikTok timeline."""
    from returnsync.models import MarketplaceReturn, ReturnEvent

    returns = MarketplaceReturn.objects.filter(source_created_at__gte=window.since,
                                               source_created_at__lt=window.until)
    if window.shop_id:
        returns = returns.filter(connection_id=window.shop_id)
    heads = {pk: (return_id, shop, stage, deadline) for pk, return_id, shop, stage, deadline in returns.values_list(
        "pk", "return_id", "connection__name", "stage", "next_action_deadline")}
    portals = _portals_by_return(heads)
    events: dict[int, list[tuple[datetime, dict]]] = defaultdict(list)
    pks = list(heads)
    for start in range(0, len(pks), 500):
        rows = (ReturnEvent.objects.filter(marketplace_return_id__in=pks[start:start + 500], system=System.TIKTOK_SHOP)
                .order_by("marketplace_return_id", "occurred_at", "id")
                .values_list("marketplace_return_id", "occurred_at", "data"))
        for return_pk, occurred_at, data in rows:
            events[return_pk].append((occurred_at, data if isinstance(data, dict) else {}))

    clocks, unknown = [], 0
    for pk, (return_id, shop, stage, current_deadline) in heads.items():
        portal_pk, portal = portals.get(pk, (None, NO_PORTAL))
        if window.portal_id and portal_pk != window.portal_id:
            continue
        asked = next((i for i, (_, data) in enumerate(events[pk]) if data.get("stage") == Stage.REQUESTED), None)
        if asked is None:
            continue  # never waited for the seller (or its history predates the timeline)
        started_at, data = events[pk][asked]
        deadline = parse_datetime(data["deadline"]) if data.get("deadline") else None
        if deadline is None and stage == Stage.REQUESTED:
            deadline = current_deadline  # still waiting: TikTok's deadline is the current one
        if deadline is None:
            unknown += 1
            continue
        answered = next((occurred for occurred, later in events[pk][asked + 1:]
                         if later.get("stage") not in (Stage.REQUESTED, None)), None)
        clocks.append(Clock(pk, return_id, shop, portal, started_at, deadline, answered))
    return clocks, ({"with TikTok's deadline not recorded": unknown} if unknown else {})


def _portal_returns(window: Window):
    from returnsync.models import PortalReturn

    rows = PortalReturn.objects.filter(marketplace_return__isnull=False, received_at__isnull=False)
    if window.shop_id:
        rows = rows.filter(marketplace_return__connection_id=window.shop_id)
    if window.portal_id:
        rows = rows.filter(connection_id=window.portal_id)
    return rows


def receipt_clocks(window: Window) -> tuple[list[Clock], dict[str, int]]:
    """Receipts the refund gate let go (or should have), from when it could release them."""
    from returnsync import refund_gate
    from returnsync.models import Connection, WriteBack

    threshold = timedelta(minutes=int(rule_for("status_drift").threshold("after_minutes")))
    sent = WriteBack.objects.filter(marketplace_return=OuterRef("marketplace_return_id"),
                                    action=WriteBackAction.APPROVE_RECEIVED_PACKAGE, succeeded_at__isnull=False)
    rows = (_portal_returns(window)
            .filter(Q(inspected_at__gte=window.since, inspected_at__lt=window.until)
                    | Q(received_at__gte=window.since, received_at__lt=window.until))
            .annotate(sent_at=Subquery(sent.order_by("succeeded_at").values("succeeded_at")[:1]))
            .values_list("marketplace_return_id", "marketplace_return__return_id",
                         "marketplace_return__connection__name", "connection_id", "connection__name",
                         "received_at", "inspected_at", "release_state", "sent_at"))
    policies = {c.pk: refund_gate.policy(c) for c in Connection.objects.filter(
        pk__in={row[3] for row in rows})} if rows else {}
    clocks, held, by_portal = [], 0, 0
    for return_pk, return_id, shop, portal_pk, portal, received, inspected, state, sent_at in rows:
        if state == ReleaseState.BY_PORTAL or policies.get(portal_pk) == refund_gate.BY_PORTAL:
            by_portal += 1
            continue
        if state in ReleaseState.holds() and sent_at is None:
            held += 1
            continue
        started = inspected if policies.get(portal_pk) == refund_gate.ON_INSPECTION and inspected else received
        if not window.since <= started < window.until:
            continue
        clocks.append(Clock(return_pk, return_id, shop, portal, started, started + threshold, sent_at))
    skipped = {"held by the refund gate on purpose": held, "whose portal releases the refund itself": by_portal}
    return clocks, {k: v for k, v in skipped.items() if v}


def refund_clocks(window: Window) -> tuple[list[Clock], dict[str, int]]:
    """Parcels received in the window, until TikTok's first refund on their return."""
    from returnsync.models import Refund

    threshold = timedelta(hours=int(rule_for("refund_lag").threshold("lag_hours")))
    paid = (Refund.objects.filter(marketplace_return=OuterRef("marketplace_return_id"),
                                  status=RefundStatus.SUCCEEDED)
            .values("marketplace_return").annotate(first=Min("refunded_at")).values("first"))
    rows = (_portal_returns(window)
            .filter(received_at__gte=window.since, received_at__lt=window.until)
            .annotate(paid_at=Subquery(paid[:1]))
            .values_list("marketplace_return_id", "marketplace_return__return_id",
                         "marketplace_return__connection__name", "connection__name", "received_at",
                         "release_state", "paid_at"))
    clocks, nothing_due = [], 0
    for return_pk, return_id, shop, portal, received, state, paid_at in rows:
        if state == ReleaseState.NOT_APPLICABLE and paid_at is None:
            nothing_due += 1
            continue
        clocks.append(Clock(return_pk, return_id, shop, portal, received, received + threshold, paid_at))
    return clocks, ({"with nothing to refund": nothing_due} if nothing_due else {})


def report(window: Window, *, now: datetime | None = None) -> list[Measure]:
    now = now or timezone.now()
    drift = int(rule_for("status_drift").threshold("after_minutes"))
    lag = int(rule_for("refund_lag").threshold("lag_hours"))
    measures = []
    for code, label, target, clocks_of in (
        ("request", "TikTok requests answered before TikTok's deadline",
         "before TikTok's own deadline for the seller (it approves by itself after)", request_clocks),
        ("receipt", "Receipts written back to TikTok",
         f"within {drift} min of the gate allowing it (status-drift threshold)", receipt_clocks),
        ("refund", "Refunds paid after the parcel arrived",
         f"within {lag} h of warehouse receipt (refund-lag threshold)", refund_clocks),
    ):
        clocks, skipped = clocks_of(window)
        measure = Measure(code, label, target).fill(clocks, now=now)
        measure.not_counted = skipped
        measures.append(measure)
    return measures
