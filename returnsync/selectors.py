"""Reads of the core domain: every queryset a page lists, and the home-page figures.

Each list selector returns a queryset with the joins its table needs already made
(``select_related`` / ``prefetch_related``), so a page runs the same number of
queries whatever the number of rows. Filtering, sorting and paging are applied on
top by the view (filterset, table).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from returnsync.choices import JobStatus, RefundStatus, Stage, badge_color
from returnsync.models import (
    ApiCall,
    BundleComponent,
    BundleMapping,
    Connection,
    InboundEvent,
    InventoryAdjustment,
    MarketplaceReturn,
    PortalReturn,
    PortalReturnLine,
    Refund,
    ReturnEvent,
    WriteBack,
)

# A return in one of these stages needs nobody any more: its deadlines don't matter.
TERMINAL_STAGES: tuple[str, ...] = (Stage.REFUNDED, Stage.CLOSED, Stage.REJECTED, Stage.CANCELLED)
# Outbound stock moves not yet confirmed by TikTok.
PENDING_JOB_STATUSES: tuple[str, ...] = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)


# --- Lists ---------------------------------------------------------------------------------


def return_list() -> QuerySet[MarketplaceReturn]:
    """TikTok returns with their order (buyer zip) and linked portal returns."""
    return MarketplaceReturn.objects.select_related("order", "connection").prefetch_related(
        Prefetch(
            "portal_returns",
            queryset=PortalReturn.objects.select_related("connection").order_by("id"),
        )
    )


def return_search_q(value: str) -> Q:
    """The ``q`` box on returns: a TikTok order id, return id, tracking number (either
    system's), buyer postal code, or the portal's own return id. Exact matches (case is
    ignored for tracking numbers): an agent pastes an id, and exact lookups use the indexes."""
    value = value.strip()
    if not value:
        return Q()
    portal_hits = PortalReturn.objects.filter(
        Q(tracking_number__iexact=value) | Q(external_id=value), marketplace_return__isnull=False
    ).values("marketplace_return_id")
    return (
        Q(order_ref=value)
        | Q(return_id=value)
        | Q(tracking_number__iexact=value)
        | Q(order__buyer_postal_code=value)
        | Q(pk__in=portal_hits)
    )


def return_get(*, pk: int) -> MarketplaceReturn:
    """One TikTok return with everything its detail page shows (raises DoesNotExist)."""
    return (
        MarketplaceReturn.objects.select_related("order", "connection")
        .prefetch_related(
            "lines",
            Prefetch(
                "portal_returns",
                queryset=PortalReturn.objects.select_related("connection")
                .prefetch_related(
                    Prefetch("lines", queryset=PortalReturnLine.objects.order_by("line_id"))
                )
                .order_by("id"),
            ),
        )
        .get(pk=pk)
    )


def return_timeline(*, marketplace_return: MarketplaceReturn) -> QuerySet[ReturnEvent]:
    """Everything that happened to this return in either system, oldest first: events on
    the TikTok return, on any portal return linked to it, and events recorded under its
    TikTok return id before the systems were linked."""
    portal_ids = PortalReturn.objects.filter(marketplace_return=marketplace_return).values("pk")
    return (
        ReturnEvent.objects.filter(
            Q(marketplace_return=marketplace_return)
            | Q(portal_return__in=portal_ids)
            | Q(return_ref=marketplace_return.return_id)
        )
        .select_related("actor", "portal_return__connection")
        .order_by("occurred_at", "id")
    )


def return_refunds(*, marketplace_return: MarketplaceReturn) -> QuerySet[Refund]:
    """Refunds on this return from any system, plus refunds on the same order that are
    linked to no return at all (a refund made outside the portal shows up here)."""
    portal_ids = PortalReturn.objects.filter(marketplace_return=marketplace_return).values("pk")
    return (
        Refund.objects.filter(
            Q(marketplace_return=marketplace_return)
            | Q(portal_return__in=portal_ids)
            | Q(
                order_ref=marketplace_return.order_ref,
                marketplace_return__isnull=True,
                portal_return__isnull=True,
            )
        )
        .select_related("connection")
        .order_by("refunded_at", "id")
    )


def refund_list() -> QuerySet[Refund]:
    return Refund.objects.select_related("connection", "marketplace_return", "portal_return")


def refund_search_q(value: str) -> Q:
    value = value.strip()
    if not value:
        return Q()
    return (
        Q(order_ref=value)
        | Q(external_id=value)
        | Q(marketplace_return__return_id=value)
        | Q(portal_return__external_id=value)
    )


def bundle_list() -> QuerySet[BundleMapping]:
    return BundleMapping.objects.prefetch_related(
        Prefetch("components", queryset=BundleComponent.objects.order_by("component_sku"))
    ).annotate(component_count=Count("components"), share_total=Sum("components__price_share"))


def inventory_adjustment_list() -> QuerySet[InventoryAdjustment]:
    return InventoryAdjustment.objects.all()


def write_back_list() -> QuerySet[WriteBack]:
    return WriteBack.objects.select_related("connection", "marketplace_return", "portal_return")


def connection_list() -> QuerySet[Connection]:
    return Connection.objects.all()


def inbound_event_list() -> QuerySet[InboundEvent]:
    # The raw body can be large and no list shows it.
    return InboundEvent.objects.select_related("connection").defer("body", "headers")


def api_call_list() -> QuerySet[ApiCall]:
    return ApiCall.objects.select_related("connection")


def api_call_ok_q() -> Q:
    """Mirrors ``ApiCall.ok``: a 2xx answer with no API-level error code."""
    return Q(http_status__gte=200, http_status__lt=300) & (Q(api_code="") | Q(api_code="0"))


# --- Home ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class StageCount:
    stage: Stage
    count: int
    percent: float  # of the largest bar, for the chart

    @property
    def color(self) -> str:
        return badge_color(self.stage)


def home_stage_counts() -> list[StageCount]:
    """TikTok returns per canonical stage, every stage listed in lifecycle order."""
    counts = dict(MarketplaceReturn.objects.order_by().values_list("stage").annotate(n=Count("id")))
    largest = max(counts.values(), default=0)
    return [
        StageCount(
            stage=stage,
            count=counts.get(stage.value, 0),
            percent=round(100 * counts.get(stage.value, 0) / largest, 1) if largest else 0.0,
        )
        for stage in Stage
    ]


def start_of_today(now: datetime | None = None) -> datetime:
    now = timezone.localtime(now or timezone.now())
    return now.replace(hour=0, minute=0, second=0, microsecond=0)


def home_intake_today(now: datetime | None = None) -> int:
    """TikTok returns created today (by TikTok's own creation time when known)."""
    return (
        MarketplaceReturn.objects.annotate(created=Coalesce("source_created_at", "created_at"))
        .filter(created__gte=start_of_today(now))
        .count()
    )


def home_deadlines_lapsing(
    *, hours: int = 12, now: datetime | None = None
) -> QuerySet[MarketplaceReturn]:
    """Open TikTok returns whose seller deadline (TikTok decides by itself once it passes)
    falls within the next ``hours``, soonest first."""
    now = now or timezone.now()
    return (
        MarketplaceReturn.objects.filter(
            next_action_deadline__gt=now, next_action_deadline__lte=now + timedelta(hours=hours)
        )
        .exclude(stage__in=TERMINAL_STAGES)
        .select_related("order")
        .order_by("next_action_deadline", "id")
    )


@dataclass(frozen=True)
class CurrencyTotal:
    currency: str
    total: Decimal
    count: int


def home_refund_totals(*, hours: int = 24, now: datetime | None = None) -> list[CurrencyTotal]:
    """Succeeded refunds in the last ``hours``, summed per currency."""
    now = now or timezone.now()
    rows = (
        Refund.objects.filter(
            status=RefundStatus.SUCCEEDED, refunded_at__gt=now - timedelta(hours=hours)
        )
        .order_by()
        .values("currency")
        .annotate(total=Sum("amount"), n=Count("id"))
        .order_by("currency")
    )
    return [
        CurrencyTotal(currency=row["currency"] or "—", total=row["total"], count=row["n"])
        for row in rows
    ]


def home_write_back_counts() -> dict[str, int]:
    """Write-backs still to go through or given up on, by status."""
    wanted = (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.DEAD)
    counts = dict(
        WriteBack.objects.filter(status__in=wanted)
        .order_by()
        .values_list("status")
        .annotate(n=Count("id"))
    )
    return {status: counts.get(status, 0) for status in wanted}


def home_restock_counts() -> dict[str, int]:
    """Inventory adjustments not yet confirmed by TikTok, and those that failed for good."""
    row = InventoryAdjustment.objects.aggregate(
        pending=Count("id", filter=Q(status__in=PENDING_JOB_STATUSES)),
        dead=Count("id", filter=Q(status=JobStatus.DEAD)),
    )
    return {"pending": row["pending"], "dead": row["dead"]}


def home_connections() -> QuerySet[Connection]:
    return Connection.objects.only(
        "id",
        "name",
        "kind",
        "is_enabled",
        "is_sandbox",
        "last_success_at",
        "last_error_at",
        "last_error",
    )
