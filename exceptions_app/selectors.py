"""Reads on exceptions: the queue, one case with everything its page shows, the counters,
and the runbook (the registry with live counts)."""
from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, QuerySet
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus
from exceptions_app.models import ExceptionActivity, ExceptionCase
from exceptions_app.rules import REGISTRY, Rule, rules
from returnsync.roles import Role

# An active case due within this is "due soon".
DUE_SOON = timedelta(hours=4)


class SlaState:
    BREACHED = "breached"
    DUE_SOON = "due_soon"
    OK = "ok"
    choices = ((BREACHED, "Breached"), (DUE_SOON, "Due soon"), (OK, "Within SLA"))


# What a queue row shows, exports and decides with. Reading only these keeps a page of a
# large queue cheap: sorting narrow rows, not evidence JSON, is what the database must do.
QUEUE_FIELDS = (
    "id", "title", "type_code", "severity", "status", "owner_role", "order_ref", "return_ref", "system",
    "amount", "currency", "opened_at", "due_at", "assignee_id",
    "assignee__username", "assignee__first_name", "assignee__last_name",
)


def exception_list() -> QuerySet[ExceptionCase]:
    return ExceptionCase.objects.select_related("assignee").only(*QUEUE_FIELDS)


def exception_search_q(value: str) -> Q:
    """The ``q`` box: TikTok order id, TikTok or portal return id, a tracking number, a zip.

    Exact matches only, each answered by an index: a tracking number is looked up in the
    returns that carry it (either system's, as given or upper-cased) and matches the
    exceptions on those orders.
    """
    from returnsync.models import MarketplaceReturn, PortalReturn

    value = value.strip()
    if not value:
        return Q()
    q = Q(order_ref=value) | Q(return_ref=value) | Q(portal_ref=value) | Q(buyer_postal_code=value)
    if " " not in value:
        # Resolved first (two index lookups), so the database sees a plain list and can
        # combine the indexes of the ORed conditions instead of scanning the table.
        spellings = {value, value.upper()}
        orders = set(MarketplaceReturn.objects.filter(tracking_number__in=spellings).values_list("order_ref", flat=True))
        orders |= set(PortalReturn.objects.filter(tracking_number__in=spellings).exclude(order_ref="")
                      .values_list("order_ref", flat=True))
        if orders:
            q |= Q(order_ref__in=sorted(orders))
    return q


def sla_state_q(state: str, *, now: datetime | None = None) -> Q:
    now = now or timezone.now()
    active = Q(status__in=ExceptionStatus.active())
    if state == SlaState.BREACHED:
        return active & Q(due_at__lte=now)
    if state == SlaState.DUE_SOON:
        return active & Q(due_at__gt=now, due_at__lte=now + DUE_SOON)
    if state == SlaState.OK:
        return active & (Q(due_at__gt=now + DUE_SOON) | Q(due_at__isnull=True))
    return Q()


def exception_counts(*, owner_roles: frozenset[str] | None = None, user=None) -> dict[str, int]:
    """Open, claimed, mine, breached and due-soon counts (active cases), in one query."""
    now = timezone.now()
    qs = ExceptionCase.objects.filter(status__in=ExceptionStatus.active())
    if owner_roles:
        qs = qs.filter(owner_role__in=owner_roles)
    mine = Q(assignee_id=user.pk) if user is not None and user.is_authenticated else Q(pk__in=[])
    # Counting ``status`` (never null), not ``id``: every column read is then in
    # exc_queue_idx, so PostgreSQL answers from the index alone instead of reading the rows.
    return qs.aggregate(
        active=Count("status"),
        open=Count("status", filter=Q(status=ExceptionStatus.OPEN)),
        claimed=Count("status", filter=Q(status=ExceptionStatus.CLAIMED)),
        mine=Count("status", filter=mine),
        breached=Count("status", filter=Q(due_at__lte=now)),
        due_soon=Count("status", filter=Q(due_at__gt=now, due_at__lte=now + DUE_SOON)),
    )


def exception_get(*, pk: int) -> ExceptionCase:
    """One case with its links (raises DoesNotExist)."""
    return ExceptionCase.objects.select_related(
        "assignee", "closed_by", "connection", "marketplace_return", "portal_return__connection",
        "write_back__connection", "inbound_event",
    ).get(pk=pk)


def exception_activities(*, exception: ExceptionCase) -> QuerySet[ExceptionActivity]:
    return exception.activities.select_related("actor", "from_assignee", "to_assignee").order_by("created_at", "id")


def role_members(*, role: str) -> QuerySet:
    """Active users who may hold an exception of ``role`` (its members and admins)."""
    User = get_user_model()
    return (
        User.objects.filter(Q(groups__name=role) | Q(groups__name=Role.ADMIN) | Q(is_superuser=True), is_active=True)
        .distinct()
        .order_by("username")
    )


@dataclass(frozen=True)
class EvidenceRow:
    field: str
    tiktok: str
    portal: str
    differs: bool


def _show(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, sort_keys=True, default=str)
    return str(value)


def evidence_rows(evidence: dict) -> list[EvidenceRow]:
    """TikTok's and the portal's values side by side, one row per field either reported;
    ``differs`` when both sides have the field and disagree, or only one has it."""
    tiktok = evidence.get("tiktok") or {}
    portal = evidence.get("portal") or {}
    if not isinstance(tiktok, dict) or not isinstance(portal, dict):
        return []
    fields = list(dict.fromkeys([*tiktok.keys(), *portal.keys()]))
    rows = []
    for name in fields:
        left, right = _show(tiktok.get(name)), _show(portal.get(name))
        rows.append(EvidenceRow(name, left, right, left.strip().casefold() != right.strip().casefold()))
    return rows


def evidence_computed(evidence: dict) -> dict:
    """The computed part without the partial refund (shown as its own table)."""
    computed = evidence.get("computed") or {}
    if not isinstance(computed, dict):
        return {}
    return {k: _show(v) for k, v in computed.items() if k != "partial_refund"}


def duration_text(value: timedelta) -> str:
    """An SLA as people say it: "90 min", "4 h", "2 days"."""
    minutes = int(value.total_seconds() // 60)
    if minutes % (60 * 24) == 0 and minutes >= 60 * 48:
        return f"{minutes // (60 * 24)} days"
    if minutes % 60 == 0:
        return f"{minutes // 60} h"
    return f"{minutes} min"


@dataclass(frozen=True)
class RuleFailure:
    """A rule whose detection raised in the last pass that ran it: it found nothing then."""

    code: str
    error: str
    at: datetime | None
    job: str


# Enough recent passes to have seen every type's last run (each pass runs every enabled rule).
FAILURE_LOOKBACK_PASSES = 20


def rule_failures() -> dict[str, RuleFailure]:
    """Per exception type, the error of its last detection pass (full or incremental), for
    the types whose last pass failed. One query over the newest detection ``SyncRun`` rows."""
    from exceptions_app.tasks import FULL_JOB, INCREMENTAL_JOB
    from returnsync.models import SyncRun

    seen: set[str] = set()
    failures: dict[str, RuleFailure] = {}
    runs = (SyncRun.objects.filter(job__in=(FULL_JOB, INCREMENTAL_JOB), finished_at__isnull=False)
            .order_by("-finished_at", "-id").values("job", "finished_at", "counts")[:FAILURE_LOOKBACK_PASSES])
    for run in runs:
        types = (run["counts"] or {}).get("types") if isinstance(run["counts"], dict) else None
        for code, per_type in (types or {}).items():
            if code in seen or not isinstance(per_type, dict):
                continue
            seen.add(code)
            if per_type.get("error"):
                failures[code] = RuleFailure(code, str(per_type["error"]), run["finished_at"], run["job"])
    return failures


@dataclass(frozen=True)
class RunbookEntry:
    rule: Rule
    default_sla: timedelta
    open_count: int
    claimed_count: int
    breached_count: int
    failure: RuleFailure | None = None

    @property
    def sla_text(self) -> str:
        return duration_text(self.rule.effective_sla)

    @property
    def default_sla_text(self) -> str:
        return duration_text(self.default_sla)


def runbook_entries() -> list[RunbookEntry]:
    """Every registered type, configured (overrides applied), with live counts: two queries."""
    now = timezone.now()
    counts = {
        row["type_code"]: row
        for row in ExceptionCase.objects.filter(status__in=ExceptionStatus.active())
        .values("type_code")
        .annotate(
            open=Count("pk", filter=Q(status=ExceptionStatus.OPEN)),
            claimed=Count("pk", filter=Q(status=ExceptionStatus.CLAIMED)),
            breached=Count("pk", filter=Q(due_at__lte=now)),
        )
    }
    failures = rule_failures()
    entries = []
    for rule in rules(include_disabled=True):
        row = counts.get(rule.code, {})
        entries.append(RunbookEntry(rule, REGISTRY[rule.code].sla, row.get("open", 0), row.get("claimed", 0),
                                    row.get("breached", 0), failures.get(rule.code)))
    return entries
