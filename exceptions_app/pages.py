"""What the exception engine adds to the core's pages (home, a return, finance).

Core never imports this app: ``ExceptionsConfig.ready`` registers these providers with
``returnsync.registry.page_context_register`` and the core views merge what they return.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta

from django.db.models import Count, Q, QuerySet
from django.urls import reverse
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus
from exceptions_app.models import ExceptionCase
from returnsync.roles import Role, user_roles

EXCEPTIONS_LISTED = 10
CHART_DAYS = 14
FINANCE_TASK_TYPES: tuple[str, ...] = ("partial_refund", "refund_mismatch")


def exceptions_active() -> QuerySet[ExceptionCase]:
    return (ExceptionCase.objects.filter(status__in=ExceptionStatus.active())
            .select_related("assignee").order_by("due_at", "id"))


def exceptions_for_user(*, user, roles) -> QuerySet[ExceptionCase]:
    """Active exceptions this person should look at: claimed by them, or open and owned by
    one of their roles (all roles for admins)."""
    mine = Q(status=ExceptionStatus.CLAIMED, assignee=user)
    unclaimed = Q(status=ExceptionStatus.OPEN)
    if Role.ADMIN not in roles:
        unclaimed &= Q(owner_role__in=[str(role) for role in roles])
    return exceptions_active().filter(mine | unclaimed)


def exceptions_breached(*, roles, now: datetime | None = None) -> QuerySet[ExceptionCase]:
    """Active exceptions past their SLA, for these roles (all for admins)."""
    rows = exceptions_active().filter(due_at__lte=now or timezone.now())
    if Role.ADMIN not in roles:
        rows = rows.filter(owner_role__in=[str(role) for role in roles])
    return rows


def return_exceptions(*, marketplace_return) -> QuerySet[ExceptionCase]:
    """Active exceptions about this return, by link or by its TikTok ids."""
    return exceptions_active().filter(
        Q(marketplace_return=marketplace_return)
        | Q(return_ref=marketplace_return.return_id)
        | Q(portal_return__marketplace_return=marketplace_return)
    )


def finance_tasks() -> QuerySet[ExceptionCase]:
    """Active partial-refund and refund-mismatch exceptions, most urgent first."""
    return exceptions_active().filter(type_code__in=FINANCE_TASK_TYPES)


@dataclass(frozen=True)
class DayPair:
    day: date
    opened: int
    resolved: int


def exceptions_opened_resolved_per_day(*, days: int = CHART_DAYS, now: datetime | None = None) -> list[DayPair]:
    """Exceptions opened and closed per local day over the last ``days`` days (today
    included), every day listed (two grouped queries)."""
    from django.db.models.functions import TruncDate

    from returnsync.selectors import start_of_today

    today = timezone.localdate(now or timezone.now())
    first = today - timedelta(days=days - 1)
    since = start_of_today(now) - timedelta(days=days - 1)
    tz = timezone.get_current_timezone()

    def per_day(field: str) -> dict[date, int]:
        return dict(ExceptionCase.objects.filter(**{f"{field}__gte": since})
                    .annotate(day=TruncDate(field, tzinfo=tz)).order_by().values_list("day")
                    .annotate(n=Count("id")))

    opened, closed = per_day("opened_at"), per_day("closed_at")
    return [DayPair(day=d, opened=opened.get(d, 0), resolved=closed.get(d, 0))
            for d in (first + timedelta(days=i) for i in range(days))]


def _links() -> dict:
    return {"exception_pages": True, "exception_list_url": reverse("exception_list")}


def home_context(*, request) -> dict:
    from returnsync.views.charts import bar_pairs_svg

    held = user_roles(request.user)
    mine = exceptions_for_user(user=request.user, roles=held)
    per_day = exceptions_opened_resolved_per_day(days=CHART_DAYS)
    return {
        **_links(),
        "my_exceptions_count": mine.count(),
        "my_exceptions": list(mine[:EXCEPTIONS_LISTED]),
        "breached_count": exceptions_breached(roles=held).count(),
        "chart_days": CHART_DAYS,
        "exceptions_chart": bar_pairs_svg(
            [(p.day.strftime("%d %b"), p.opened, p.resolved) for p in per_day],
            legend=("Opened", "Resolved"),
            title=f"Exceptions opened and resolved per day, last {CHART_DAYS} days",
        ),
        "exceptions_chart_rows": per_day,
    }


def return_detail_context(*, request, marketplace_return) -> dict:
    return {**_links(), "exceptions": list(return_exceptions(marketplace_return=marketplace_return))}


def portal_return_detail_context(*, request, portal_return) -> dict:
    return {**_links(), "exceptions": list(exceptions_active().filter(portal_return=portal_return))}


def finance_context(*, request, portal_return_ids=()) -> dict:
    """The open finance cases of the money tasks the page lists (portal return → case)."""
    cases = finance_tasks().filter(portal_return_id__in=list(portal_return_ids))
    return {**_links(), "exception_for": {case.portal_return_id: case for case in cases}}


@dataclass(frozen=True)
class TypeCount:
    code: str
    title: str
    owner: str
    open: int
    claimed: int
    breached: int
    percent: float  # of the largest type, for the bar
    url: str

    @property
    def active(self) -> int:
        return self.open + self.claimed


def exception_breakdown() -> list[TypeCount]:
    """Active exceptions per type (open, claimed, past SLA), largest first: one query."""
    from exceptions_app.selectors import runbook_entries

    entries = runbook_entries()
    largest = max((e.open_count + e.claimed_count for e in entries), default=0)
    rows = [TypeCount(e.rule.code, e.rule.title, e.rule.owner.label, e.open_count, e.claimed_count, e.breached_count,
                      round(100 * (e.open_count + e.claimed_count) / largest, 1) if largest else 0.0,
                      f"{reverse('exception_list')}?owner_role={e.rule.owner.value}&type_code={e.rule.code}")
            for e in entries]
    return sorted(rows, key=lambda r: (-r.active, r.title))


def sync_health_context(*, request) -> dict:
    """Active exceptions per type, and the detection rules whose last pass failed (they
    find nothing until fixed)."""
    from exceptions_app.rules import REGISTRY
    from exceptions_app.selectors import rule_failures

    failures = rule_failures()
    return {"exception_breakdown": exception_breakdown(),
            "rule_failures": [(REGISTRY[code].title if code in REGISTRY else code, failure)
                              for code, failure in sorted(failures.items())],
            "runbook_url": reverse("runbook")}
