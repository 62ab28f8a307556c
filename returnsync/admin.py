"""Django admin for the core domain: a back office for the people who run ReturnSync.

Changelists select their foreign keys up front (no N+1) and edit foreign keys as raw
ids (no dropdown of every order). Three rules the admin must not let anyone break:

- A connection's ``credentials`` and ``webhook_secret`` are write-only: the form offers
  empty inputs, a blank input keeps what is stored, and no page ever renders a stored
  value (the change page says only whether they are set, and which credential keys).
- A bundle's component price shares sum to 1 (``bundle_components_validate``).
- The return timeline is written through ``timeline_record`` and never edited.
"""
from __future__ import annotations

import json
from typing import ClassVar

from django import forms
from django.contrib import admin, messages
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Sum
from django.utils.html import format_html

from returnsync import registry
from returnsync.crypto import Undecryptable
from returnsync.models import (
    ApiCall,
    BundleComponent,
    BundleMapping,
    Connection,
    InboundEvent,
    InventoryAdjustment,
    MarketplaceReturn,
    MarketplaceReturnLine,
    Order,
    OrderLine,
    OrderLineComponent,
    PortalReturn,
    PortalReturnLine,
    Refund,
    ReturnEvent,
    SyncCursor,
    SyncRun,
    WarehouseMapping,
    WriteBack,
)
from returnsync.services import ComponentSpec, bundle_components_validate, connection_set_secrets
from returnsync.timeline import timeline_record

admin.site.site_header = "ReturnSync administration"
admin.site.site_title = "ReturnSync admin"


def _pre(text: str):
    return format_html('<pre style="white-space: pre-wrap; margin: 0">{}</pre>', text)


def _pretty_json(value) -> str:
    return json.dumps(value, indent=2, sort_keys=True, ensure_ascii=False)


# --- Connections ---------------------------------------------------------------------

SECRET_FIELDS = ("credentials", "webhook_secret")


class WriteOnlyTextarea(forms.Textarea):
    """A textarea that never renders a value, not even the one just submitted."""

    def format_value(self, value):
        return None


def _https_formfield(db_field: models.Field, **kwargs) -> forms.Field | None:
    if isinstance(db_field, models.URLField):
        kwargs.setdefault("assume_scheme", "https")  # a base URL typed without a scheme
    return db_field.formfield(**kwargs)


class ConnectionAdminForm(forms.ModelForm):
    """The stored secrets are not fields of this form: only inputs for replacing them."""

    new_credentials = forms.CharField(
        label="Credentials",
        required=False,
        widget=WriteOnlyTextarea(attrs={"rows": 4, "autocomplete": "off", "spellcheck": "false"}),
        help_text=(
            'A JSON object, e.g. {"app_key": "…", "app_secret": "…"}. Its keys are added to '
            "the stored credentials, replacing keys of the same name. Leave blank to keep "
            "what is stored."
        ),
    )
    new_webhook_secret = forms.CharField(
        label="Webhook secret",
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave blank to keep the stored secret.",
    )

    auth_code = forms.CharField(
        label="Authorization code",
        required=False,
        widget=forms.TextInput(attrs={"autocomplete": "off"}),
        help_text=(
            "For systems that authorize a shop by a code (TikTok Shop): paste the code from the "
            "seller's authorization redirect. On save it is exchanged for tokens (stored encrypted) "
            "and the shop is discovered. Tokens can also be pasted as credentials."
        ),
    )

    class Meta:
        model = Connection
        exclude = SECRET_FIELDS
        formfield_callback = _https_formfield

    def clean_new_credentials(self) -> dict | None:
        text = self.cleaned_data["new_credentials"].strip()
        if not text:
            return None
        try:
            value = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValidationError(
                "Credentials are not valid JSON (%(error)s at line %(line)s, column %(column)s).",
                code="invalid_json",
                params={"error": exc.msg, "line": exc.lineno, "column": exc.colno},
            ) from exc
        if not isinstance(value, dict):
            raise ValidationError(
                'Credentials must be a JSON object of names to values, e.g. {"app_key": "…"}.',
                code="not_an_object",
            )
        return value


@admin.register(Connection)
class ConnectionAdmin(admin.ModelAdmin):
    form = ConnectionAdminForm
    formfield_overrides: ClassVar[dict] = {models.URLField: {"assume_scheme": "https"}}
    list_display = (
        "name", "kind", "base_url", "is_sandbox", "is_enabled", "credentials_set", "webhook_secret_set",
        "healthy", "last_success_at", "last_error_at",
    )
    list_filter = ("kind", "is_enabled", "is_sandbox")
    search_fields = ("name", "base_url", "webhook_slug")
    readonly_fields = (
        "credentials_status", "webhook_secret_status", "last_success_at", "last_error_at", "last_error",
        "created_at", "updated_at",
    )
    fieldsets = (
        (None, {"fields": ("name", "kind", "base_url", "is_sandbox", "is_enabled")}),
        (
            "Secrets",
            {
                "description": "Write-only: stored values are never shown. A blank input keeps what is stored.",
                "fields": (
                    "credentials_status", "new_credentials", "webhook_secret_status", "new_webhook_secret",
                    "auth_code",
                ),
            },
        ),
        ("Sync", {"fields": ("webhook_slug", "poll_interval_seconds", "rate_limit_per_second", "options")}),
        ("Health", {"fields": ("last_success_at", "last_error_at", "last_error", "created_at", "updated_at")}),
    )

    @admin.display(boolean=True, description="credentials")
    def credentials_set(self, obj: Connection) -> bool | None:
        return None if isinstance(obj.credentials, Undecryptable) else bool(obj.credentials)

    @admin.display(boolean=True, description="webhook secret")
    def webhook_secret_set(self, obj: Connection) -> bool | None:
        return None if isinstance(obj.webhook_secret, Undecryptable) else bool(obj.webhook_secret)

    @admin.display(boolean=True)
    def healthy(self, obj: Connection) -> bool:
        return obj.is_healthy

    @admin.display(description="stored credentials")
    def credentials_status(self, obj: Connection) -> str:
        if isinstance(obj.credentials, Undecryptable):
            return "Stored, but no configured encryption key can read them: enter them again."
        if not obj.credentials:
            return "Not set"
        return "Set: " + ", ".join(sorted(obj.credentials))  # the keys only, never a value

    @admin.display(description="stored webhook secret")
    def webhook_secret_status(self, obj: Connection) -> str:
        if isinstance(obj.webhook_secret, Undecryptable):
            return "Stored, but no configured encryption key can read it: enter it again."
        return "Set" if obj.webhook_secret else "Not set"

    def save_model(self, request, obj: Connection, form, change: bool) -> None:
        if change:  # leave the secret columns alone: only connection_set_secrets writes them
            obj.save(update_fields=[
                f.name for f in obj._meta.concrete_fields if not f.primary_key and f.name not in SECRET_FIELDS
            ])
        else:
            obj.save()
        connection_set_secrets(
            connection=obj,
            credentials=form.cleaned_data.get("new_credentials"),
            webhook_secret=form.cleaned_data.get("new_webhook_secret"),
        )
        auth_code = (form.cleaned_data.get("auth_code") or "").strip()
        if auth_code:
            self._authorize(request, obj, auth_code)

    def _authorize(self, request, obj: Connection, auth_code: str) -> None:
        """Exchange a pasted authorization code through the connector; the outcome is a
        message, never a 500."""
        found = registry.connector_or_none(obj.kind)
        if found is None or found.authorize is None:
            self.message_user(request, f"An authorization code does not apply to {obj.get_kind_display()} "
                                       "connections.", messages.WARNING)
            return
        try:
            message = found.authorize(connection=obj, code=auth_code)
        except Exception as exc:  # the system's refusal, or no answer: a message either way
            self.message_user(request, f"{found.label} refused the authorization code: {exc}", messages.ERROR)
            return
        self.message_user(request, message, messages.SUCCESS)


@admin.register(WarehouseMapping)
class WarehouseMappingAdmin(admin.ModelAdmin):
    list_display = ("location_code", "tiktok_warehouse_id", "name", "connection", "is_default", "updated_at")
    list_filter = ("connection", "is_default")
    list_select_related = ("connection",)
    search_fields = ("location_code", "tiktok_warehouse_id", "name", "connection__name")
    raw_id_fields = ("connection",)


@admin.register(SyncCursor)
class SyncCursorAdmin(admin.ModelAdmin):
    list_display = ("connection", "stream", "watermark", "updated_at")
    list_filter = ("connection",)
    list_select_related = ("connection",)
    search_fields = ("stream", "connection__name")
    raw_id_fields = ("connection",)


@admin.register(SyncRun)
class SyncRunAdmin(admin.ModelAdmin):
    list_display = ("job", "stream", "connection", "status", "queued_at", "started_at", "finished_at", "duration")
    list_filter = ("status", "job", "connection")
    list_select_related = ("connection",)
    search_fields = ("job", "stream", "error")
    date_hierarchy = "queued_at"
    raw_id_fields = ("connection",)
    readonly_fields = ("queued_at",)

    @admin.display(description="duration (s)")
    def duration(self, obj: SyncRun) -> float | None:
        return obj.duration_seconds


@admin.register(ApiCall)
class ApiCallAdmin(admin.ModelAdmin):
    list_display = (
        "created_at", "connection", "method", "path", "http_status", "api_code", "duration_ms", "attempt",
        "request_id",
    )
    list_filter = ("connection", "method", "http_status")
    list_select_related = ("connection",)
    search_fields = ("path", "request_id", "api_code", "error")
    date_hierarchy = "created_at"
    raw_id_fields = ("connection",)
    readonly_fields = ("created_at",)


@admin.register(InboundEvent)
class InboundEventAdmin(admin.ModelAdmin):
    """What arrived, exactly as it arrived: body and headers are shown, never edited.
    Only the processing state (status, attempts, error) can be changed, for triage."""

    list_display = (
        "received_at", "source", "event_type", "dedupe_key", "subject_ref", "status", "attempts", "connection",
        "processed_at",
    )
    list_filter = ("status", "source", "event_type", "connection")
    list_select_related = ("connection",)
    search_fields = ("dedupe_key", "subject_ref", "event_type", "error")
    date_hierarchy = "received_at"
    raw_id_fields = ("connection",)
    fields = (
        "connection", "source", "event_type", "dedupe_key", "subject_ref", "received_at", "status", "attempts",
        "error", "processed_at", "headers_display", "body_display", "body_formatted",
    )
    arrival_fields = ("connection", "source", "event_type", "dedupe_key", "subject_ref")
    readonly_fields = ("received_at", "headers_display", "body_display", "body_formatted")

    def get_readonly_fields(self, request, obj=None):
        readonly = super().get_readonly_fields(request, obj)
        return (*self.arrival_fields, *readonly) if obj is not None else readonly

    @admin.display(description="headers")
    def headers_display(self, obj: InboundEvent):
        return _pre(_pretty_json(obj.headers or {}))

    @admin.display(description="body (as received)")
    def body_display(self, obj: InboundEvent):
        return _pre(obj.body_text)

    @admin.display(description="body (formatted)")
    def body_formatted(self, obj: InboundEvent):
        try:
            return _pre(json.dumps(json.loads(obj.body_text), indent=2, ensure_ascii=False))
        except ValueError:
            return "Not JSON"


# --- Orders and returns --------------------------------------------------------------


class OrderLineInline(admin.TabularInline):
    model = OrderLine
    fields = ("line_id", "sku_id", "seller_sku", "product_id", "product_name", "sale_price", "currency")
    extra = 0
    show_change_link = True


@admin.register(Order)
class OrderAdmin(admin.ModelAdmin):
    list_display = ("order_id", "connection", "raw_status", "buyer_postal_code", "currency", "placed_at")
    list_filter = ("connection", "raw_status")
    list_select_related = ("connection",)
    search_fields = ("order_id", "buyer_postal_code", "lines__seller_sku", "lines__sku_id")
    date_hierarchy = "placed_at"
    raw_id_fields = ("connection",)
    readonly_fields = ("created_at", "updated_at")
    inlines = (OrderLineInline,)


class OrderLineComponentInline(admin.TabularInline):
    model = OrderLineComponent
    extra = 0


@admin.register(OrderLine)
class OrderLineAdmin(admin.ModelAdmin):
    list_display = ("line_id", "order", "seller_sku", "sku_id", "product_name", "sale_price", "currency")
    list_select_related = ("order",)
    search_fields = ("order__order_id", "line_id", "seller_sku", "sku_id", "product_id", "product_name")
    raw_id_fields = ("order",)
    inlines = (OrderLineComponentInline,)


@admin.register(OrderLineComponent)
class OrderLineComponentAdmin(admin.ModelAdmin):
    list_display = ("seller_sku", "sku_id", "quantity", "line")
    list_select_related = ("line",)
    search_fields = ("seller_sku", "sku_id", "product_id", "line__line_id", "line__order__order_id")
    raw_id_fields = ("line",)


class MarketplaceReturnLineInline(admin.TabularInline):
    model = MarketplaceReturnLine
    fields = ("line_id", "order_line_id", "sku_id", "seller_sku", "product_name", "refund_amount", "currency")
    extra = 0


@admin.register(MarketplaceReturn)
class MarketplaceReturnAdmin(admin.ModelAdmin):
    list_display = (
        "return_id", "order_ref", "connection", "stage", "raw_status", "return_type", "tracking_number",
        "next_action", "next_action_deadline", "refund_total", "currency", "source_created_at",
    )
    list_filter = ("stage", "connection", "return_type", "next_action")
    list_select_related = ("connection",)
    search_fields = (
        "return_id", "order_ref", "tracking_number", "order__buyer_postal_code", "lines__seller_sku",
        "lines__sku_id",
    )
    date_hierarchy = "source_created_at"
    raw_id_fields = ("connection", "order")
    readonly_fields = ("created_at", "updated_at")
    inlines = (MarketplaceReturnLineInline,)


@admin.register(MarketplaceReturnLine)
class MarketplaceReturnLineAdmin(admin.ModelAdmin):
    list_display = ("line_id", "marketplace_return", "seller_sku", "sku_id", "refund_amount", "currency")
    list_select_related = ("marketplace_return",)
    search_fields = (
        "line_id", "order_line_id", "seller_sku", "sku_id", "marketplace_return__return_id",
        "marketplace_return__order_ref",
    )
    raw_id_fields = ("marketplace_return",)


class PortalReturnLineInline(admin.TabularInline):
    model = PortalReturnLine
    fields = (
        "line_id", "sku", "product_name", "order_line", "expected_quantity", "received_quantity", "grade",
        "raw_grade", "unit_price", "currency",
    )
    raw_id_fields = ("order_line",)
    extra = 0


@admin.register(PortalReturn)
class PortalReturnAdmin(admin.ModelAdmin):
    list_display = (
        "external_id", "connection", "return_ref", "order_ref", "stage", "raw_status", "tracking_number",
        "warehouse_code", "authorized_refund", "currency", "received_at", "source_created_at",
    )
    list_filter = ("stage", "connection", "warehouse_code")
    list_select_related = ("connection",)
    search_fields = (
        "external_id", "return_ref", "order_ref", "tracking_number", "order__buyer_postal_code", "lines__sku",
    )
    date_hierarchy = "source_created_at"
    raw_id_fields = ("connection", "marketplace_return", "order")
    readonly_fields = ("created_at", "updated_at")
    inlines = (PortalReturnLineInline,)


@admin.register(PortalReturnLine)
class PortalReturnLineAdmin(admin.ModelAdmin):
    list_display = (
        "line_id", "portal_return", "sku", "expected_quantity", "received_quantity", "grade", "raw_grade",
        "unit_price", "currency",
    )
    list_filter = ("grade",)
    list_select_related = ("portal_return__connection",)
    search_fields = (
        "line_id", "sku", "product_name", "portal_return__external_id", "portal_return__return_ref",
        "portal_return__order_ref",
    )
    raw_id_fields = ("portal_return", "order_line")


@admin.register(Refund)
class RefundAdmin(admin.ModelAdmin):
    list_display = (
        "external_id", "connection", "order_ref", "amount", "currency", "status", "raw_status", "refunded_at",
        "marketplace_return", "portal_return",
    )
    list_filter = ("status", "connection", "currency")
    list_select_related = ("connection", "marketplace_return", "portal_return__connection")
    search_fields = (
        "external_id", "order_ref", "marketplace_return__return_id", "portal_return__external_id",
        "portal_return__return_ref",
    )
    date_hierarchy = "refunded_at"
    raw_id_fields = ("connection", "marketplace_return", "portal_return")
    readonly_fields = ("created_at", "updated_at")


class ReturnEventAdminForm(forms.ModelForm):
    class Meta:
        model = ReturnEvent
        fields = (
            "marketplace_return", "portal_return", "system", "kind", "summary", "data", "occurred_at", "dedupe_key",
        )

    def clean(self):
        cleaned = super().clean()
        if not cleaned.get("marketplace_return") and not cleaned.get("portal_return"):
            raise ValidationError("Pick the marketplace return or the portal return this event belongs to.")
        return cleaned


@admin.register(ReturnEvent)
class ReturnEventAdmin(admin.ModelAdmin):
    """The timeline is append-only: events can be added (through ``timeline_record``), not edited."""

    form = ReturnEventAdminForm
    list_display = ("occurred_at", "system", "kind", "summary", "order_ref", "return_ref", "actor")
    list_filter = ("system", "kind")
    list_select_related = ("actor",)
    search_fields = ("order_ref", "return_ref", "summary", "dedupe_key")
    date_hierarchy = "occurred_at"
    raw_id_fields = ("marketplace_return", "portal_return")
    readonly_fields = ("order_ref", "return_ref", "actor", "recorded_at")

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def save_model(self, request, obj: ReturnEvent, form, change: bool) -> None:
        event = timeline_record(
            system=obj.system,
            kind=obj.kind,
            summary=obj.summary,
            marketplace_return=obj.marketplace_return,
            portal_return=obj.portal_return,
            occurred_at=obj.occurred_at,
            data=obj.data,
            actor=request.user,
            dedupe_key=obj.dedupe_key or None,
        )
        if event is None:  # lost a race to an identical event: show the one that won
            event = ReturnEvent.objects.get(dedupe_key=obj.dedupe_key)
        obj.pk, obj.order_ref, obj.return_ref, obj.actor = event.pk, event.order_ref, event.return_ref, event.actor


# --- Catalog and stock -------------------------------------------------------------


class BundleComponentFormSet(forms.BaseInlineFormSet):
    """The components are valid only together: at least one, no SKU twice, shares summing to 1."""

    def clean(self) -> None:
        super().clean()
        if any(self.errors):
            return  # a row's own errors come first
        specs = [
            ComponentSpec(
                component_sku=form.cleaned_data["component_sku"],
                quantity=form.cleaned_data["quantity"],
                price_share=form.cleaned_data["price_share"],
            )
            for form in self.forms
            if form.cleaned_data and not self._should_delete_form(form)
        ]
        bundle_components_validate(specs)


class BundleComponentInline(admin.TabularInline):
    model = BundleComponent
    formset = BundleComponentFormSet
    fields = ("component_sku", "quantity", "price_share")
    min_num = 1
    extra = 1


@admin.register(BundleMapping)
class BundleMappingAdmin(admin.ModelAdmin):
    list_display = ("bundle_sku", "name", "is_active", "component_count", "share_total", "updated_at")
    list_filter = ("is_active",)
    search_fields = ("bundle_sku", "name", "components__component_sku")
    readonly_fields = ("created_at", "updated_at")
    inlines = (BundleComponentInline,)

    def get_queryset(self, request):
        return super().get_queryset(request).annotate(
            component_count=Count("components"), share_total=Sum("components__price_share")
        )

    @admin.display(description="components", ordering="component_count")
    def component_count(self, obj: BundleMapping) -> int:
        return obj.component_count

    @admin.display(description="shares sum to", ordering="share_total")
    def share_total(self, obj: BundleMapping):
        return obj.share_total

    def save_model(self, request, obj, form, change):
        obj.save_without_historical_record()  # its version is written once the components are saved

    def save_related(self, request, form, formsets, change):
        from returnsync.history import record_as

        super().save_related(request, form, formsets, change)
        record_as(form.instance, actor=request.user)
        form.instance.save()  # one version in the change history, components included

    def get_deleted_objects(self, objs, request):
        # Components go with their bundle, though they cannot be deleted on their own.
        deleted, counts, perms_needed, protected = super().get_deleted_objects(objs, request)
        perms_needed.discard(BundleComponent._meta.verbose_name)
        return deleted, counts, perms_needed, protected


class BundleComponentAdminForm(forms.ModelForm):
    class Meta:
        model = BundleComponent
        fields = ("bundle", "component_sku", "quantity", "price_share")

    def clean(self):
        cleaned = super().clean()
        bundle = cleaned.get("bundle") or getattr(self.instance, "bundle", None)
        if self.errors or bundle is None:
            return cleaned
        others = bundle.components.exclude(pk=self.instance.pk) if self.instance.pk else bundle.components.all()
        specs = [ComponentSpec(c.component_sku, c.quantity, c.price_share) for c in others]
        specs.append(ComponentSpec(cleaned["component_sku"], cleaned["quantity"], cleaned["price_share"]))
        try:
            bundle_components_validate(specs)
        except ValidationError as exc:
            raise ValidationError(
                [*exc.messages, "Change a bundle's components together, on its bundle mapping page."]
            ) from exc
        return cleaned


@admin.register(BundleComponent)
class BundleComponentAdmin(admin.ModelAdmin):
    """For finding which bundles hold a SKU. Edits must keep the bundle's shares summing to 1,
    so in practice components are changed on the bundle mapping page."""

    form = BundleComponentAdminForm
    list_display = ("component_sku", "bundle", "quantity", "price_share")
    list_select_related = ("bundle",)
    search_fields = ("component_sku", "bundle__bundle_sku")
    raw_id_fields = ("bundle",)

    def get_readonly_fields(self, request, obj=None):
        return ("bundle",) if obj is not None else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # removing one component breaks the bundle's shares


@admin.register(InventoryAdjustment)
class InventoryAdjustmentAdmin(admin.ModelAdmin):
    list_display = (
        "created_at", "seller_sku", "warehouse_id", "delta", "reason", "status", "idempotency_key", "applied_at",
    )
    list_filter = ("status", "reason", "warehouse_id")
    search_fields = ("seller_sku", "sku_id", "product_id", "warehouse_id", "idempotency_key")
    date_hierarchy = "created_at"
    raw_id_fields = ("portal_return_line", "write_back")
    readonly_fields = ("created_at", "updated_at")


@admin.register(WriteBack)
class WriteBackAdmin(admin.ModelAdmin):
    list_display = (
        "created_at", "action", "status", "connection", "marketplace_return", "portal_return", "attempts",
        "max_attempts", "next_attempt_at", "last_http_status", "last_api_code", "succeeded_at",
    )
    list_filter = ("status", "action", "connection")
    list_select_related = ("connection", "marketplace_return", "portal_return__connection")
    search_fields = (
        "idempotency_key", "marketplace_return__return_id", "marketplace_return__order_ref",
        "portal_return__external_id", "portal_return__return_ref", "last_error",
    )
    date_hierarchy = "created_at"
    raw_id_fields = ("connection", "marketplace_return", "portal_return")
    readonly_fields = ("created_at", "updated_at")
