"""Sandbox admin: simulate the warehouse (ship, scan, grade) on a sandbox ZigZag return."""
from django.contrib import admin, messages

from connectors.zigzag.sandbox import api
from connectors.zigzag.sandbox.models import ZigZagAccount, ZigZagReturn, ZigZagWebhook


@admin.register(ZigZagAccount)
class ZigZagAccountAdmin(admin.ModelAdmin):
    list_display = ("username", "webhook_url", "call_count", "faults")
    exclude = ("password", "webhook_secret")


def _each(modeladmin, request, queryset, label: str, action) -> None:
    done = 0
    for ret in queryset:
        try:
            action(ret)
            done += 1
        except ValueError as exc:
            modeladmin.message_user(request, f"{ret.return_id}: {exc}", messages.ERROR)
    api.deliver_webhooks()
    modeladmin.message_user(request, f"{label}: {done} return(s); webhooks sent.")


@admin.register(ZigZagReturn)
class ZigZagReturnAdmin(admin.ModelAdmin):
    list_display = ("return_id", "reference", "order_reference", "status", "location", "updated_at")
    list_filter = ("status",)
    search_fields = ("return_id", "reference", "order_reference", "tracking_number")
    readonly_fields = ("account", "return_id", "reference", "created_at", "updated_at")
    actions = ["ship", "scan_in_full", "scan_short", "grade_sellable", "grade_damaged"]

    @admin.action(description="Simulate: buyer ships the parcel")
    def ship(self, request, queryset):
        _each(self, request, queryset, "Shipped", lambda r: api.ship(r.account, r.return_id))

    @admin.action(description="Simulate: warehouse scan, everything received")
    def scan_in_full(self, request, queryset):
        _each(self, request, queryset, "Scanned", lambda r: api.scan(r.account, r.return_id))

    @admin.action(description="Simulate: warehouse scan, first item one short")
    def scan_short(self, request, queryset):
        def short(ret):
            first = ret.items[0]
            api.scan(ret.account, ret.return_id, received={
                i["id"]: (i["quantity"] - 1 if i is first else i["quantity"]) for i in ret.items})
        _each(self, request, queryset, "Scanned short", short)

    @admin.action(description="Simulate: grade received items sellable")
    def grade_sellable(self, request, queryset):
        _each(self, request, queryset, "Graded", lambda r: api.grade(r.account, r.return_id))

    @admin.action(description="Simulate: grade received items damaged")
    def grade_damaged(self, request, queryset):
        _each(self, request, queryset, "Graded", lambda r: api.grade(
            r.account, r.return_id, grades={i["id"]: "DAMAGED" for i in r.items if i["received_quantity"]}))


@admin.register(ZigZagWebhook)
class ZigZagWebhookAdmin(admin.ModelAdmin):
    list_display = ("event_id", "event", "status", "attempts", "last_status_code", "created_at")
    list_filter = ("status", "event")
