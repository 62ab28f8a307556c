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
from typing import Any

from django.db.models import Count, Prefetch, Q, QuerySet, Sum
from django.db.models.functions import Coalesce
from django.utils import timezone

from returnsync.choices import (
    InboundStatus,
    JobStatus,
    RefundStatus,
    Stage,
    System,
    WriteBackAction,
    badge_color,
)
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
        | (Q(combined_return_id=value) & ~Q(combined_return_id=""))
    )


def combined_returns(*, marketplace_return: MarketplaceReturn) -> list[MarketplaceReturn]:
    """Every TikTok return shipped together with this one (TikTok's ``combined_return_id``,
    same connection), this one included, or [] when it is not a combined return."""
    combined = marketplace_return.combined_return_id
    if not combined:
        return []
    return list(MarketplaceReturn.objects.filter(connection_id=marketplace_return.connection_id,
                                                 combined_return_id=combined)
                .exclude(combined_return_id="").select_related("order").order_by("return_id"))


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


def return_mirror_attempts(*, marketplace_return: MarketplaceReturn) -> QuerySet[WriteBack]:
    """The write-backs that create this return in a portal (mirroring), newest first: their
    status and last error say why a return is not in the portal yet."""
    return marketplace_return.write_backs.filter(action=WriteBackAction.CREATE_PORTAL_RETURN).select_related(
        "connection").order_by("-created_at")


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
    return with_health_counts(Connection.objects.all())


def inbound_event_list() -> QuerySet[InboundEvent]:
    # The raw body can be large and no list shows it.
    return InboundEvent.objects.select_related("connection").defer("body", "headers")


# Header names that carry credentials or signatures: shown as redacted whatever the system
# (the receiver already drops the connector's own signature headers before storing).
SECRET_HEADER_WORDS = ("auth", "sign", "secret", "token", "key", "password", "cookie", "session", "hmac")
REDACTED = "•••••• (redacted)"
BODY_SHOWN_MAX = 200_000  # characters of a raw body the viewer shows (the stored body is kept whole)


@dataclass(frozen=True)
class ShownHeader:
    name: str
    value: str
    redacted: bool


def inbound_event_get(*, pk: int) -> InboundEvent:
    return InboundEvent.objects.select_related("connection").get(pk=pk)


def inbound_event_headers(event: InboundEvent) -> list[ShownHeader]:
    """The stored headers, sorted, with anything that could authenticate redacted."""
    from returnsync import registry

    secret = set()
    found = registry.connector_or_none(event.source)
    if found is not None and found.webhook is not None and event.connection is not None:
        secret = {name.lower() for name in found.webhook.secret_headers(event.connection)}
    headers = event.headers if isinstance(event.headers, dict) else {}
    shown = []
    for name in sorted(headers, key=str.lower):
        lowered = str(name).lower()
        hidden = lowered in secret or any(word in lowered for word in SECRET_HEADER_WORDS)
        shown.append(ShownHeader(str(name), REDACTED if hidden else str(headers[name])[:2000], hidden))
    return shown


def inbound_event_body(event: InboundEvent) -> tuple[str, bool, bool]:
    """(text to show, is it JSON pretty-printed, was it cut) for the raw-body viewer."""
    import json

    text = event.body_text
    pretty = False
    try:
        text = json.dumps(json.loads(text), indent=2, ensure_ascii=False, sort_keys=True)
        pretty = True
    except (ValueError, RecursionError):
        pass
    cut = len(text) > BODY_SHOWN_MAX
    return text[:BODY_SHOWN_MAX], pretty, cut


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
    return with_health_counts(Connection.objects.only(
        "id",
        "name",
        "kind",
        "is_enabled",
        "is_sandbox",
        "last_success_at",
        "last_error_at",
        "last_error",
        "last_test_at",
        "last_test_ok",
        "last_test_message",
    ))


# --- Pages of other apps ---------------------------------------------------------------------


def url_or_none(name: str, *args) -> str | None:
    """``reverse(name, args)`` when that page exists in this build, else None (pages from
    other apps are linked only once they are installed)."""
    from django.urls import NoReverseMatch, reverse

    try:
        return reverse(name, args=args)
    except NoReverseMatch:
        return None


# --- Home charts ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Bucket:
    label: str
    count: int
    percent: float


REFUND_LAG_BUCKETS: tuple[tuple[str, float | None], ...] = (
    ("under 1 day", 24),
    ("1–2 days", 48),
    ("2–3 days", 72),
    ("3–7 days", 168),
    ("over 7 days", None),
)



def _tiktok_refunds_of_outer_return():
    """Succeeded TikTok refunds of the outer row's ``marketplace_return``, grouped by it: a
    subquery to annotate with an aggregate (first refund time, refunded total)."""
    from django.db.models import OuterRef

    return (
        Refund.objects.filter(
            marketplace_return=OuterRef("marketplace_return"),
            status=RefundStatus.SUCCEEDED,
            connection__kind=System.TIKTOK_SHOP,
        )
        .order_by()
        .values("marketplace_return")
    )


def refund_lag_distribution(*, days: int = 30, now: datetime | None = None) -> list[Bucket]:
    """How long after warehouse receipt TikTok refunded, for portal returns received in the
    last ``days`` days; those still waiting are counted by how long they have waited, in
    a last "not refunded yet" bucket. One query."""
    from django.db.models import Min, Subquery

    now = now or timezone.now()
    first_refund = _tiktok_refunds_of_outer_return().annotate(first=Min("refunded_at")).values("first")
    rows = (
        PortalReturn.objects.filter(received_at__gte=now - timedelta(days=days))
        .annotate(refunded=Subquery(first_refund))
        .values_list("received_at", "refunded")
    )
    counts = [0] * (len(REFUND_LAG_BUCKETS) + 1)
    for received, refunded in rows:
        if refunded is None:
            counts[-1] += 1
            continue
        hours = max((refunded - received).total_seconds() / 3600, 0)
        for i, (_, limit) in enumerate(REFUND_LAG_BUCKETS):
            if limit is None or hours < limit:
                counts[i] += 1
                break
    largest = max(counts) or 1
    labels = [label for label, _ in REFUND_LAG_BUCKETS] + ["not refunded yet"]
    return [
        Bucket(label=label, count=n, percent=round(100 * n / largest, 1))
        for label, n in zip(labels, counts, strict=True)
    ]


# --- Return page ---------------------------------------------------------------------------

# Where a buyer starts a return on the brand's portal. A connection may set its own in
# ``options["portal_url_template"]``; sandbox connections fall back to this one.
PORTAL_URL_TEMPLATE_OPTION = "portal_url_template"
SANDBOX_PORTAL_URL_TEMPLATE = "{base_url}/returns/?order={order_id}&zip={zip}"


@dataclass(frozen=True)
class PortalLink:
    connection: Connection
    url: str


def portal_link_for(*, connection: Connection, order_id: str, zip_code: str) -> str | None:
    """The return-portal URL for one order on one connection: its ``portal_url_template``
    option (placeholders ``{order_id}``, ``{zip}``, ``{base_url}``), or the sandbox default;
    None when neither applies."""
    from urllib.parse import quote

    template = (connection.options or {}).get(PORTAL_URL_TEMPLATE_OPTION) or (
        SANDBOX_PORTAL_URL_TEMPLATE if connection.is_sandbox else ""
    )
    if not template:
        return None
    try:
        return template.format(
            base_url=connection.base_url.rstrip("/"),
            order_id=quote(order_id, safe=""),
            zip=quote(zip_code or "", safe=""),
        )
    except (KeyError, IndexError, ValueError):
        return None  # a template with an unknown placeholder: no link rather than an error


def return_portal_links(
    *, marketplace_return: MarketplaceReturn, portals: list[PortalReturn]
) -> list[PortalLink]:
    """Portal links for the order: the connections of the linked portal records, or every
    enabled portal connection when none is linked yet."""
    connections = [p.connection for p in portals] or list(
        Connection.objects.filter(is_enabled=True).exclude(kind=System.TIKTOK_SHOP).order_by("kind", "name")
    )
    zip_code = marketplace_return.order.buyer_postal_code if marketplace_return.order_id else ""
    links, seen = [], set()
    for connection in connections:
        if connection.pk in seen:
            continue
        seen.add(connection.pk)
        url = portal_link_for(
            connection=connection, order_id=marketplace_return.order_ref, zip_code=zip_code
        )
        if url:
            links.append(PortalLink(connection=connection, url=url))
    return links


def return_lookup(*, q: str) -> QuerySet[MarketplaceReturn]:
    """Returns matching one search box: order id, return id, tracking or buyer zip."""
    return MarketplaceReturn.objects.filter(return_search_q(q)).order_by("-source_created_at", "-id")


def portal_only_lookup(*, q: str) -> QuerySet[PortalReturn]:
    """Portal records linked to no TikTok return (orphans, or not linked yet) matching the
    same search box: the portal's own id or reference, the order id it carries, a tracking
    number, the buyer's zip."""
    value = q.strip()
    if not value:
        return PortalReturn.objects.none()
    return (PortalReturn.objects.filter(marketplace_return__isnull=True)
            .filter(Q(external_id=value) | Q(return_ref=value) | Q(order_ref=value)
                    | Q(tracking_number__iexact=value) | Q(order__buyer_postal_code=value))
            .select_related("connection").order_by("-source_created_at", "-id"))


def portal_return_get(*, pk: int) -> PortalReturn:
    return (PortalReturn.objects.select_related("connection", "order", "marketplace_return")
            .prefetch_related(Prefetch("lines", queryset=PortalReturnLine.objects.order_by("line_id"))).get(pk=pk))


def portal_return_timeline(*, portal_return: PortalReturn) -> QuerySet[ReturnEvent]:
    return (ReturnEvent.objects.filter(portal_return=portal_return).select_related("actor")
            .order_by("occurred_at", "id"))


def link_candidates(*, portal_return: PortalReturn, q: str = "", limit: int = 10) -> QuerySet[MarketplaceReturn]:
    """TikTok returns a person may link an unlinked portal record to: those matching ``q``
    (order id, return id, tracking, zip), else those of the order id the portal carries;
    none already linked to another record of the same portal."""
    taken = PortalReturn.objects.filter(connection=portal_return.connection,
                                        marketplace_return__isnull=False).values("marketplace_return_id")
    query = return_search_q(q) if q.strip() else Q(order_ref=portal_return.order_ref or "-")
    return (MarketplaceReturn.objects.filter(query).exclude(pk__in=taken).select_related("order", "connection")
            .order_by("-source_created_at", "-id")[:limit])


# --- Operations ----------------------------------------------------------------------------


def warehouse_mapping_list() -> QuerySet:
    from returnsync.models import WarehouseMapping

    return WarehouseMapping.objects.select_related("connection")


def bundle_mappings_for_export() -> QuerySet[BundleMapping]:
    return BundleMapping.objects.prefetch_related(
        Prefetch("components", queryset=BundleComponent.objects.order_by("component_sku"))
    ).order_by("bundle_sku")


# --- Sync health ---------------------------------------------------------------------------

ERROR_RATE_WINDOW_HOURS = 24


@dataclass(frozen=True)
class SyncHealth:
    connection: Connection
    watermark: datetime | None
    calls: int
    failed_calls: int
    write_backs_queued: int
    write_backs_dead: int
    dead_letters: int

    @property
    def lag(self) -> timedelta | None:
        """How far the newest synced data is behind now (None: never polled)."""
        return timezone.now() - self.watermark if self.watermark else None

    @property
    def error_rate(self) -> float | None:
        return round(100 * self.failed_calls / self.calls, 1) if self.calls else None


def sync_health(*, now: datetime | None = None) -> list[SyncHealth]:
    """Per connection: last success (on the row), lag behind the source (the oldest poll
    watermark among its streams), API error rate over the last 24 h, write-backs queued or
    failed for good, and dead letters. A fixed number of queries."""
    from django.db.models import Max

    from returnsync.models import SyncCursor

    now = now or timezone.now()
    since = now - timedelta(hours=ERROR_RATE_WINDOW_HOURS)
    connections = list(with_health_counts(Connection.objects.order_by("kind", "name"), now=now))
    watermarks = dict(
        SyncCursor.objects.filter(watermark__isnull=False)
        .order_by()
        .values_list("connection_id")
        .annotate(w=Max("watermark"))
    )
    calls = {
        row["connection_id"]: row
        for row in ApiCall.objects.filter(created_at__gte=since)
        .order_by()
        .values("connection_id")
        .annotate(n=Count("id"), failed=Count("id", filter=~api_call_ok_q()))
    }
    write_backs = {
        row["connection_id"]: row
        for row in WriteBack.objects.order_by()
        .values("connection_id")
        .annotate(
            queued=Count("id", filter=Q(status__in=PENDING_JOB_STATUSES)),
            dead=Count("id", filter=Q(status=JobStatus.DEAD)),
        )
    }
    dead_letters = dict(
        InboundEvent.objects.filter(status=InboundStatus.FAILED)
        .order_by()
        .values_list("connection_id")
        .annotate(n=Count("id"))
    )
    return [
        SyncHealth(
            connection=c,
            watermark=watermarks.get(c.pk),
            calls=calls.get(c.pk, {}).get("n", 0),
            failed_calls=calls.get(c.pk, {}).get("failed", 0),
            write_backs_queued=write_backs.get(c.pk, {}).get("queued", 0),
            write_backs_dead=write_backs.get(c.pk, {}).get("dead", 0),
            dead_letters=dead_letters.get(c.pk, 0),
        )
        for c in connections
    ]


def dead_letters(*, limit: int = 50) -> QuerySet[InboundEvent]:
    return (
        InboundEvent.objects.filter(status=InboundStatus.FAILED)
        .select_related("connection")
        .defer("body", "headers")
        .order_by("-received_at", "-id")[:limit]
    )


def write_backs_failed(*, limit: int = 50) -> QuerySet[WriteBack]:
    return (
        WriteBack.objects.filter(status__in=(JobStatus.DEAD, JobStatus.RETRYING))
        .select_related("connection", "marketplace_return")
        .order_by("-updated_at", "-id")[:limit]
    )


def api_calls_recent(*, connection_id: int | None = None, limit: int = 20) -> QuerySet[ApiCall]:
    rows = ApiCall.objects.select_related("connection").order_by("-created_at", "-id")
    if connection_id:
        rows = rows.filter(connection_id=connection_id)
    return rows[:limit]


# --- Connection health (the badge) ----------------------------------------------------------
#
# The rule, in the words the badge's hover text uses:
# - "Not checked yet": no call, sync or connection test has run.
# - "Failing": the latest check failed. A check is a connection test an admin ran, or the
#   outcome of the connector's calls (a call that succeeded, perhaps after retries, or one
#   that failed for good); whichever happened last decides.
# - "Degraded": the latest check passed, but at least DEGRADED_PERCENT % (and at least
#   DEGRADED_MIN_FAILED) of the API calls in the last hour failed and had to be retried;
#   calls from before the latest failure do not count (once fixed, old errors are history).
# - "Healthy": the latest check passed and fewer calls than that failed.

HEALTH_WINDOW = timedelta(hours=1)
DEGRADED_PERCENT = 5
DEGRADED_MIN_FAILED = 2

HEALTH_RULE = (
    f"Failing: the latest check (a connection test, or the connector's latest call) failed. "
    f"Degraded: it passed, but at least {DEGRADED_PERCENT}% of API calls in the last hour since the "
    f"latest failure failed (at least {DEGRADED_MIN_FAILED}). Healthy: it passed with fewer failures."
)


@dataclass(frozen=True)
class ConnectionHealth:
    value: str  # a badge value (its colour comes from the job statuses': green, orange, red)
    label: str
    reason: str
    calls: int = 0
    failed_calls: int = 0


def _health_cutoff(now: datetime):
    """Per connection, in SQL: calls after this count (the last hour, after the latest failure)."""
    from django.db.models import Case, DateTimeField, Value, When
    from django.db.models.functions import Greatest

    floor = Value(now - HEALTH_WINDOW, output_field=DateTimeField())
    return Greatest(
        floor,
        Coalesce("last_error_at", floor),
        Coalesce(Case(When(last_test_ok=False, then="last_test_at"), output_field=DateTimeField()), floor),
        output_field=DateTimeField(),
    )


def with_health_counts(connections: QuerySet[Connection], *, now: datetime | None = None) -> QuerySet[Connection]:
    """Annotate each connection with the calls its badge counts (``health_calls``,
    ``health_failed_calls``): two correlated counts on the (connection, time) index."""
    from django.db.models import IntegerField, OuterRef, Subquery

    now = now or timezone.now()

    def count(failed: bool):
        calls = ApiCall.objects.filter(connection=OuterRef("pk"), created_at__gt=OuterRef("health_cutoff"))
        if failed:
            calls = calls.exclude(api_call_ok_q())
        counted = calls.order_by().values("connection").annotate(n=Count("pk")).values("n")
        return Coalesce(Subquery(counted, output_field=IntegerField()), 0)

    return connections.annotate(health_cutoff=_health_cutoff(now)).annotate(
        health_calls=count(False), health_failed_calls=count(True))


def _when(value: datetime) -> str:
    return f"{timezone.localtime(value):%Y-%m-%d %H:%M}"


def connection_health(connection: Connection, *, now: datetime | None = None) -> ConnectionHealth:
    """The badge of one connection, with the reason in words (see HEALTH_RULE). Uses the
    counts ``with_health_counts`` annotated, else counts them (one query)."""
    from returnsync.choices import JobStatus

    checks = [
        (connection.last_success_at, True, "a call succeeded"),
        (connection.last_error_at, False, f"a call failed for good: {connection.last_error or 'no message'}"),
    ]
    if connection.last_test_at is not None and connection.last_test_ok is not None:
        verdict = "passed" if connection.last_test_ok else "failed"
        checks.append((connection.last_test_at, bool(connection.last_test_ok),
                       f"the connection test {verdict}: {connection.last_test_message or 'no message'}"))
    checks = [c for c in checks if c[0] is not None]
    if not checks:
        return ConnectionHealth("", "Not checked yet", "No call, sync or connection test has run yet.")
    # The latest decides; at the same instant a failure outweighs a success.
    at, ok, what = max(checks, key=lambda c: (c[0], not c[1]))
    if not ok:
        return ConnectionHealth(JobStatus.DEAD.value, "Failing", f"Latest check ({_when(at)}): {what}."[:500])
    if hasattr(connection, "health_calls"):
        calls, failed = connection.health_calls, connection.health_failed_calls
    else:
        counted = with_health_counts(Connection.objects.filter(pk=connection.pk), now=now).values_list(
            "health_calls", "health_failed_calls").first() or (0, 0)
        calls, failed = counted
    since = max(d for d in ((now or timezone.now()) - HEALTH_WINDOW, connection.last_error_at,
                            connection.last_test_at if connection.last_test_ok is False else None) if d)
    passed = f"Latest check ({_when(at)}): {what}."
    share = round(100 * failed / calls, 1) if calls else 0.0
    counted_text = f"{failed} of {calls} API calls since {_when(since)} failed ({share}%)."
    if failed >= DEGRADED_MIN_FAILED and share >= DEGRADED_PERCENT:
        return ConnectionHealth(JobStatus.RETRYING.value, "Degraded", f"{passed} But {counted_text}"[:500],
                                calls, failed)
    return ConnectionHealth(JobStatus.SUCCEEDED.value, "Healthy",
                            f"{passed} {counted_text if calls else 'No API calls since ' + _when(since) + '.'}"[:500],
                            calls, failed)


# --- Sync health charts ----------------------------------------------------------------------

CHART_HOURS = 24


@dataclass(frozen=True)
class HourBar:
    start: datetime
    calls: int
    errors: int
    lag_minutes: int | None  # how far behind the source at the end of the hour (None: never polled by then)
    peak_per_minute: int  # the busiest minute's calls
    calls_pct: float = 0.0  # bar heights, of the chart's largest value
    errors_pct: float = 0.0
    lag_pct: float = 0.0

    @property
    def label(self) -> str:
        return f"{timezone.localtime(self.start):%H:00}"

    @property
    def error_share_pct(self) -> float:
        """The failed part of this hour's bar."""
        return _pct(self.errors, self.calls)


@dataclass(frozen=True)
class ConnectionCharts:
    connection: Connection
    hours: list[HourBar]
    quota: dict | None  # what the connector reports: {"used", "limit", "period"}; None: it reports none
    rate_limit_per_minute: int

    @property
    def calls(self) -> int:
        return sum(h.calls for h in self.hours)

    @property
    def errors(self) -> int:
        return sum(h.errors for h in self.hours)

    @property
    def peak_per_minute(self) -> int:
        return max((h.peak_per_minute for h in self.hours), default=0)

    @property
    def rate_used_percent(self) -> float:
        return round(100 * self.peak_per_minute / self.rate_limit_per_minute, 1) if self.rate_limit_per_minute else 0.0

    @property
    def max_lag_minutes(self) -> int:
        return max((h.lag_minutes or 0 for h in self.hours), default=0)


def _pct(value: float, largest: float) -> float:
    return round(100 * value / largest, 1) if largest else 0.0


def sync_charts(*, connections: list[Connection], now: datetime | None = None,
                hours: int = CHART_HOURS) -> list[ConnectionCharts]:
    """Per connection, per hour of the last ``hours``: API calls and errors, the busiest
    minute (against the connection's own rate limit), and the lag behind the source at the
    end of the hour (from the successful polls: the end of the newest window read by then).
    Three queries whatever the number of connections; the quota where the connector reports one."""
    from django.db.models.functions import TruncMinute

    from returnsync import registry
    from returnsync.choices import SyncRunStatus
    from returnsync.models import SyncRun

    now = now or timezone.now()
    first = timezone.localtime(now).replace(minute=0, second=0, microsecond=0) - timedelta(hours=hours - 1)
    starts = [first + timedelta(hours=i) for i in range(hours)]
    ids = [c.pk for c in connections]
    per_minute = (ApiCall.objects.filter(connection_id__in=ids, created_at__gte=first)
                  .annotate(minute=TruncMinute("created_at")).order_by()
                  .values_list("connection_id", "minute")
                  .annotate(n=Count("id"), failed=Count("id", filter=~api_call_ok_q())))
    buckets: dict[tuple[int, int], list[int]] = {}
    for connection_id, minute, n, failed in per_minute:
        index = int((minute - first).total_seconds() // 3600)
        if 0 <= index < hours:
            calls, errors, peak = buckets.setdefault((connection_id, index), [0, 0, 0])
            buckets[(connection_id, index)] = [calls + n, errors + failed, max(peak, n)]
    polls: dict[int, list[tuple[datetime, datetime]]] = {}
    runs = (SyncRun.objects.filter(connection_id__in=ids, job__endswith="_poll", status=SyncRunStatus.SUCCEEDED,
                                   finished_at__gte=first - timedelta(hours=hours))
            .order_by("finished_at").values_list("connection_id", "finished_at", "counts"))
    for connection_id, finished, counts in runs:
        until = (counts or {}).get("until") if isinstance(counts, dict) else None
        try:
            read_up_to = datetime.fromisoformat(until) if until else None
        except (TypeError, ValueError):
            read_up_to = None
        if read_up_to is not None:
            polls.setdefault(connection_id, []).append((finished, read_up_to))
    charts = []
    for connection in connections:
        runs_of = polls.get(connection.pk, [])
        rows = []
        for i, start in enumerate(starts):
            end = min(start + timedelta(hours=1), now)
            done = [read for finished, read in runs_of if finished <= end]
            lag = int(max((end - max(done)).total_seconds(), 0) // 60) if done else None
            calls, errors, peak = buckets.get((connection.pk, i), [0, 0, 0])
            rows.append(HourBar(start, calls, errors, lag, peak))
        top_calls = max((r.calls for r in rows), default=0)
        top_lag = max((r.lag_minutes or 0 for r in rows), default=0)
        rows = [HourBar(r.start, r.calls, r.errors, r.lag_minutes, r.peak_per_minute, _pct(r.calls, top_calls),
                        _pct(r.errors, top_calls), _pct(r.lag_minutes or 0, top_lag)) for r in rows]
        found = registry.connector_or_none(connection.kind)
        quota = None
        if found is not None and found.quota is not None:
            try:
                quota = found.quota(connection=connection)
            except Exception:  # a quota that cannot be read is shown as not reported
                quota = None
        charts.append(ConnectionCharts(connection, rows, quota, connection.rate_limit_per_second * 60))
    return charts


# --- A connection's settings as its connector describes them -------------------------------


@dataclass(frozen=True)
class OptionRow:
    name: str
    default: Any
    value: Any
    is_set: bool
    help: str


def connection_options(*, connection: Connection) -> list[OptionRow]:
    """Every option the connector documents (``Connector.options``): its default, the value
    in ``Connection.options`` if set, and what it means; then any stored key it does not
    document (shown so nothing is hidden)."""
    from returnsync import registry

    found = registry.connector_or_none(connection.kind)
    stored = connection.options or {}
    rows = [OptionRow(spec.name, spec.default, stored.get(spec.name, spec.default), spec.name in stored, spec.help)
            for spec in (found.options if found else ())]
    documented = {row.name for row in rows}
    rows += [OptionRow(name, None, value, True, "Stored on the connection but not in the connector's option list (set when the shop was authorized, or by hand).")
             for name, value in sorted(stored.items()) if name not in documented]
    return rows


def connection_first_poll(*, connection: Connection):
    """The connection's first poll that said how far back it read (``counts["note"]``), or None."""
    from returnsync.models import SyncRun

    for run in (SyncRun.objects.filter(connection=connection, job__endswith="_poll", counts__has_key="note")
                .order_by("queued_at", "id")[:1]):
        return run
    return None
