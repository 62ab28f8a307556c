"""The tables every list page shows (django-tables2).

Cells render HTML (badges, links, times); ``value_*``/``value()`` give the plain text
the CSV export writes, so the export carries the same columns a person sees.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

import django_tables2 as tables
from django.urls import NoReverseMatch, reverse
from django.utils import dateformat, timezone
from django.utils.html import format_html, format_html_join
from django.utils.text import Truncator

from returnsync.choices import JobStatus
from returnsync.models import (
    ApiCall,
    BundleMapping,
    Connection,
    InboundEvent,
    InventoryAdjustment,
    MarketplaceReturn,
    Refund,
    WarehouseMapping,
    WriteBack,
)
from returnsync.roles import Role, has_any_role
from returnsync.templatetags.returnsync import connection_health, health_badge, render_badge, until

DATETIME_FORMAT = "Y-m-d H:i"
# Deadlines closer than this are highlighted.
DEADLINE_WARNING_HOURS = 12
# An API call's outcome has no enum of its own: its badge borrows the job statuses' values
# so the colour comes from the one table in returnsync.choices like every other badge.
OK, FAILED = JobStatus.SUCCEEDED.value, JobStatus.DEAD.value


def _localtime(value: datetime) -> str:
    return dateformat.format(timezone.localtime(value), DATETIME_FORMAT)


class BadgeColumn(tables.Column):
    """A status rendered as its coloured badge (the raw value picks the colour)."""

    def render(self, value, record, bound_column):
        raw = tables.A(bound_column.accessor).resolve(record)
        return render_badge(raw, value)

    def value(self, value):
        return value


class DateTimeColumn(tables.Column):
    def render(self, value):
        return format_html('<time datetime="{}">{}</time>', value.isoformat(), _localtime(value))

    def value(self, value):
        return value.isoformat() if isinstance(value, datetime) else value


class DeadlineColumn(DateTimeColumn):
    """A deadline, with how long is left and a warning colour once it is close."""

    def render(self, value):
        left = (value - timezone.now()).total_seconds()
        css = (
            "deadline overdue"
            if left <= 0
            else "deadline soon"
            if left < DEADLINE_WARNING_HOURS * 3600
            else "deadline"
        )
        hint = until(value)
        return format_html(
            '<time class="{}" datetime="{}">{} <small>{}</small></time>',
            css,
            value.isoformat(),
            _localtime(value),
            hint,
        )


class MoneyColumn(tables.Column):
    """An amount shown with its currency (``currency_accessor``); exported as a plain number."""

    def __init__(self, *args, currency_accessor: str = "currency", **kwargs):
        self.currency_accessor = currency_accessor
        kwargs.setdefault("attrs", {"td": {"class": "num"}, "th": {"class": "num"}})
        super().__init__(*args, **kwargs)

    def render(self, value, record):
        currency = tables.A(self.currency_accessor).resolve(record, quiet=True) or ""
        return format_html("{} <small>{}</small>", f"{value:,.2f}", currency)

    def value(self, value):
        return f"{value:.2f}" if isinstance(value, Decimal) else value


class TextColumn(tables.Column):
    """Long text (errors) cut to a line; the full text is in the tooltip and the export."""

    def __init__(self, *args, length: int = 60, **kwargs):
        self.length = length
        kwargs.setdefault("attrs", {"td": {"class": "text-cut"}})
        super().__init__(*args, **kwargs)

    def render(self, value):
        return format_html(
            '<span class="error-text" title="{}">{}</span>',
            value,
            Truncator(value).chars(self.length),
        )

    def value(self, value):
        return value


class CodeColumn(tables.Column):
    """An identifier or raw external value, in monospace."""

    def render(self, value):
        return format_html("<code>{}</code>", value)

    def value(self, value):
        return value


class YesNoColumn(tables.BooleanColumn):
    def render(self, value, record, bound_column):
        return format_html(
            '<span class="yn yn-{}">{}</span>', "yes" if value else "no", "Yes" if value else "No"
        )

    def value(self, value):
        return "yes" if value else "no"


class BaseTable(tables.Table):
    # Columns kept off the screen but written to the CSV (e.g. a money column's currency).
    export_extra: tuple[str, ...] = ()

    class Meta:
        attrs = {"class": "table"}
        per_page = 50

    def export_exclude(self) -> list[str]:
        return [
            c.name
            for c in self.columns.iterall()
            if not c.visible and c.name not in self.export_extra
        ]


# --- Returns -------------------------------------------------------------------------------


class ReturnTable(BaseTable):
    return_id = CodeColumn("Return id", linkify=True)
    order_ref = CodeColumn("Order id")
    buyer_zip = tables.Column("Buyer zip", accessor="order__buyer_postal_code")
    stage = BadgeColumn("Stage")
    raw_status = CodeColumn("TikTok status")
    tracking_number = CodeColumn("Tracking")
    portal_status = tables.Column("Portal status", empty_values=(), orderable=False)
    next_action_deadline = DeadlineColumn("Deadline")
    source_created_at = DateTimeColumn("Created")

    class Meta(BaseTable.Meta):
        model = MarketplaceReturn
        fields = ()
        empty_text = "No returns match."

    @staticmethod
    def _portals(record):
        return list(record.portal_returns.all())

    def render_portal_status(self, record):
        portals = self._portals(record)
        if not portals:
            return format_html('<span class="muted">{}</span>', "No portal record")
        return format_html_join(
            " ",
            '<span class="portal"><small>{}</small> {}</span>',
            (
                (p.connection.get_kind_display(), render_badge(p.stage, p.get_stage_display()))
                for p in portals
            ),
        )

    def value_portal_status(self, record):
        return "; ".join(
            f"{p.connection.get_kind_display()}: {p.raw_status or p.get_stage_display()}"
            for p in self._portals(record)
        )


# --- Refunds -------------------------------------------------------------------------------


class RefundTable(BaseTable):
    source = tables.Column("Source", accessor="connection__kind")
    external_id = CodeColumn("Refund id")
    order_ref = CodeColumn("Order id")
    return_id = CodeColumn(
        "Return id",
        accessor="marketplace_return__return_id",
        linkify=lambda record: record.marketplace_return.get_absolute_url(),
    )
    amount = MoneyColumn("Amount")
    currency = tables.Column("Currency", visible=False)
    status = BadgeColumn("Status")
    refunded_at = DateTimeColumn("Refunded at")
    export_extra = ("currency",)

    class Meta(BaseTable.Meta):
        model = Refund
        fields = ()
        empty_text = "No refunds match."


# --- Bundles -------------------------------------------------------------------------------


class BundleTable(BaseTable):
    bundle_sku = CodeColumn("Bundle SKU")
    name = tables.Column("Name")
    is_active = YesNoColumn("Active")
    components = tables.Column(
        "Components (SKU × qty @ price share)", empty_values=(), orderable=False
    )
    share_total = tables.Column(
        "Shares total", attrs={"td": {"class": "num"}, "th": {"class": "num"}}
    )
    updated_at = DateTimeColumn("Updated")

    class Meta(BaseTable.Meta):
        model = BundleMapping
        fields = ()
        empty_text = "No bundle mappings yet."

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        request = kwargs.get("request")
        # Finance reads bundles; only operations edits them (the SKU links to the edit page).
        self.can_edit = request is not None and has_any_role(
            request.user, frozenset({Role.OPERATIONS})
        )

    def render_bundle_sku(self, value, record):
        if not self.can_edit:
            return format_html("<code>{}</code>", value)
        return format_html(
            '<a href="{}" title="Edit or delete"><code>{}</code></a>',
            reverse("bundle_edit", args=[record.pk]),
            value,
        )

    def value_bundle_sku(self, value):
        return value

    @staticmethod
    def _share(share: Decimal) -> str:
        return f"{(share * 100).normalize():f}%"

    def render_components(self, record):
        parts = record.components.all()
        if not parts:
            return format_html('<span class="muted">{}</span>', "No components")
        return format_html_join(
            "",
            '<span class="component"><code>{}</code> × {} @ {}</span>',
            ((c.component_sku, c.quantity, self._share(c.price_share)) for c in parts),
        )

    def value_components(self, record):
        return "; ".join(
            f"{c.component_sku} x {c.quantity} @ {c.price_share.normalize():f}"
            for c in record.components.all()
        )

    def render_share_total(self, value):
        if value == 1:
            return "100%"
        return format_html(
            '<span class="warn" title="{}">{}</span>',
            "Shares should sum to 100%",
            self._share(value),
        )

    def value_share_total(self, value):
        return f"{value.normalize():f}"


# --- Restock -------------------------------------------------------------------------------


class InventoryAdjustmentTable(BaseTable):
    status = BadgeColumn("Status")
    seller_sku = CodeColumn("SKU")
    warehouse_id = CodeColumn("Warehouse")
    delta = tables.Column("Delta", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    reason = tables.Column("Reason")
    created_at = DateTimeColumn("Created")
    applied_at = DateTimeColumn("Applied")
    last_error = TextColumn("Last error")

    class Meta(BaseTable.Meta):
        model = InventoryAdjustment
        fields = ()
        empty_text = "No stock adjustments match."

    def render_delta(self, value):
        return f"{value:+d}"


# --- Write-backs ---------------------------------------------------------------------------


class WriteBackTable(BaseTable):
    action = tables.Column("Action")
    return_id = CodeColumn(
        "Return id",
        accessor="marketplace_return__return_id",
        linkify=lambda record: record.marketplace_return.get_absolute_url(),
    )
    connection = tables.Column("Connection", order_by=("connection__kind", "connection__name"))
    status = BadgeColumn("Status")
    attempts = tables.Column("Attempts", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    next_attempt_at = DateTimeColumn("Next attempt")
    last_error = TextColumn("Last error")
    created_at = DateTimeColumn("Queued")

    class Meta(BaseTable.Meta):
        model = WriteBack
        fields = ()
        empty_text = "No write-backs match."

    def render_attempts(self, value, record):
        return f"{value} / {record.max_attempts}"

    value_attempts = render_attempts


# --- Connections ---------------------------------------------------------------------------


def webhook_path_for(connection: Connection) -> str:
    """Where this connection's webhooks arrive: ``/webhooks/<connector slug>/<webhook_slug>/``
    (the shared receiver's route for the connector), or "" when its system takes none."""
    from returnsync import registry

    found = registry.connector_or_none(connection.kind)
    if found is None or found.webhook is None:
        return ""
    try:
        return reverse(f"{found.slug}_webhook", kwargs={"webhook_slug": connection.webhook_slug})
    except NoReverseMatch:
        return f"/webhooks/{found.slug}/{connection.webhook_slug}/"


class ConnectionTable(BaseTable):
    """Never shows a credential or the webhook secret: only whether credentials are set."""

    name = tables.Column("Name")
    kind = tables.Column("System")
    base_url = CodeColumn("Base URL", visible=False)
    state = tables.Column("State", empty_values=(), order_by=("-is_enabled", "is_sandbox"))
    is_sandbox = YesNoColumn("Sandbox", visible=False)
    is_enabled = YesNoColumn("Enabled", visible=False)
    credentials_set = tables.Column("Credentials", empty_values=(), orderable=False)
    webhook_path = tables.Column("Webhook URL path", empty_values=(), orderable=False)
    polling = tables.Column("Poll · limit", empty_values=(), order_by=("poll_interval_seconds",))
    poll_interval_seconds = tables.Column("Poll every (s)", visible=False)
    rate_limit_per_second = tables.Column("Rate limit (/s)", visible=False)
    last_success_at = DateTimeColumn("Last success")
    last_error_at = DateTimeColumn("Last error")
    last_error = tables.Column("Last error message", visible=False)
    health = tables.Column("Health", empty_values=(), orderable=False)
    export_extra = (
        "base_url",
        "is_sandbox",
        "is_enabled",
        "poll_interval_seconds",
        "rate_limit_per_second",
        "last_error",
    )

    class Meta(BaseTable.Meta):
        model = Connection
        fields = ()
        sequence = (
            "name",
            "kind",
            "state",
            "health",
            "credentials_set",
            "webhook_path",
            "polling",
            "...",
        )
        empty_text = "No connections configured."

    def render_polling(self, record):
        return format_html(
            '<span title="Polled every {} s, at most {} requests per second">{} s · {}/s</span>',
            record.poll_interval_seconds,
            record.rate_limit_per_second,
            record.poll_interval_seconds,
            record.rate_limit_per_second,
        )

    def value_polling(self, record):
        return f"{record.poll_interval_seconds} s, {record.rate_limit_per_second}/s"

    def render_name(self, value, record):
        return format_html(
            '<strong><a href="{}">{}</a></strong><small class="cell-sub" title="{}"><code>{}</code></small>',
            reverse("connection_detail", args=[record.pk]),
            value,
            record.base_url,
            record.base_url,
        )

    def value_name(self, value):
        return value

    def render_state(self, record):
        return format_html(
            '<span class="yn yn-{}">{}</span>{}',
            "yes" if record.is_enabled else "no",
            "Enabled" if record.is_enabled else "Disabled",
            format_html(' <small class="muted">{}</small>', "sandbox") if record.is_sandbox else "",
        )

    def value_state(self, record):
        return " ".join(
            filter(
                None,
                [
                    "enabled" if record.is_enabled else "disabled",
                    "sandbox" if record.is_sandbox else "",
                ],
            )
        )

    def render_credentials_set(self, record):
        return format_html(
            '<span class="yn yn-{}">{}</span>',
            *(("yes", "Set") if record.has_credentials else ("no", "Not set")),
        )

    def value_credentials_set(self, record):
        return "set" if record.has_credentials else "not set"

    def render_webhook_path(self, record):
        return format_html(
            '<span class="copyable"><input type="text" readonly value="{}" '
            'aria-label="Webhook URL path" size="{}">'
            '<button type="button" class="btn btn-small" data-copy>Copy</button></span>',
            webhook_path_for(record),
            len(webhook_path_for(record)),
        )

    def value_webhook_path(self, record):
        return webhook_path_for(record)

    def render_last_error_at(self, value, record):
        return format_html(
            '<time datetime="{}">{}</time><small class="cell-sub error-text" title="{}">{}</small>',
            value.isoformat(),
            _localtime(value),
            record.last_error,
            record.last_error,
        )

    def value_last_error_at(self, value):
        return value.isoformat()

    def render_health(self, record):
        return health_badge(record)

    def value_health(self, record):
        return connection_health(record)[1]


# --- Warehouse mappings --------------------------------------------------------------------


class WarehouseMappingTable(BaseTable):
    connection = tables.Column("Connection", order_by=("connection__kind", "connection__name"))
    location_code = CodeColumn(
        "Location code", linkify=lambda record: reverse("warehouse_edit", args=[record.pk])
    )
    tiktok_warehouse_id = CodeColumn("TikTok warehouse id")
    name = tables.Column("Name")
    is_default = YesNoColumn("Default")
    updated_at = DateTimeColumn("Updated")

    class Meta(BaseTable.Meta):
        model = WarehouseMapping
        fields = ()
        empty_text = "No warehouse mappings match."


# --- Inbound events ------------------------------------------------------------------------


class InboundEventTable(BaseTable):
    """Each row opens the event's raw body and headers; a dead letter has its Retry."""

    source = tables.Column("Source")
    event_type = CodeColumn("Type")
    dedupe_key = CodeColumn("Dedupe key", linkify=lambda record: reverse("inbound_detail", args=[record.pk]))
    subject_ref = CodeColumn("Subject")
    status = BadgeColumn("Status")
    attempts = tables.Column("Attempts", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    received_at = DateTimeColumn("Received")
    processed_at = DateTimeColumn("Processed")
    error = TextColumn("Error")
    actions = tables.Column("", empty_values=(), orderable=False)

    class Meta(BaseTable.Meta):
        model = InboundEvent
        fields = ()
        empty_text = "No inbound events match."

    def export_exclude(self) -> list[str]:
        return [*super().export_exclude(), "actions"]

    def render_actions(self, record):
        from django.middleware.csrf import get_token

        from returnsync.choices import InboundStatus

        if record.status != InboundStatus.FAILED or self.request is None:
            return ""
        return format_html(
            '<form method="post" action="{}" class="inline-form"><input type="hidden" name="csrfmiddlewaretoken" '
            'value="{}"><input type="hidden" name="next" value="{}"><button class="btn btn-small">Retry</button>'
            "</form>",
            reverse("inbound_retry", args=[record.pk]), get_token(self.request), self.request.get_full_path(),
        )


# --- API calls -----------------------------------------------------------------------------


class ApiCallTable(BaseTable):
    created_at = DateTimeColumn("Time")
    connection = tables.Column("Connection", order_by=("connection__kind", "connection__name"))
    method = CodeColumn("Method")
    path = CodeColumn("Path")
    http_status = tables.Column("HTTP", empty_values=())
    api_code = CodeColumn("API code")
    duration_ms = tables.Column("ms", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    attempt = tables.Column("Attempt", attrs={"td": {"class": "num"}, "th": {"class": "num"}})
    request_id = CodeColumn("Request id")
    error = TextColumn("Error", length=50)

    class Meta(BaseTable.Meta):
        model = ApiCall
        fields = ()
        empty_text = "No API calls match."

    def render_http_status(self, value, record):
        return render_badge(
            OK if record.ok else FAILED, value if value is not None else "no answer"
        )

    def value_http_status(self, value):
        return value
