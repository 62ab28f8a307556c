"""Django admin: the exception tables, read-mostly (the lifecycle goes through the services
and the dashboard, so the activity log stays true)."""
from django.contrib import admin

from exceptions_app.models import ExceptionActivity, ExceptionCase, ExceptionTypeSetting


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


class ExceptionActivityInline(admin.TabularInline):
    model = ExceptionActivity
    extra = 0
    can_delete = False
    fields = ("created_at", "verb", "actor", "from_status", "to_status", "from_assignee", "to_assignee", "note")
    readonly_fields = fields

    def has_add_permission(self, request, obj=None):
        return False


@admin.register(ExceptionCase)
class ExceptionCaseAdmin(ReadOnlyAdmin):
    list_display = ("id", "type_code", "status", "severity", "owner_role", "assignee", "order_ref", "due_at")
    list_filter = ("status", "severity", "owner_role", "type_code")
    search_fields = ("order_ref", "return_ref", "portal_ref", "tracking_numbers", "buyer_postal_code")
    list_select_related = ("assignee",)
    inlines = (ExceptionActivityInline,)


@admin.register(ExceptionActivity)
class ExceptionActivityAdmin(ReadOnlyAdmin):
    list_display = ("created_at", "exception", "verb", "actor", "from_status", "to_status")
    list_filter = ("verb",)
    list_select_related = ("exception", "actor")


@admin.register(ExceptionTypeSetting)
class ExceptionTypeSettingAdmin(ReadOnlyAdmin):
    list_display = ("type_code", "is_enabled", "sla_minutes", "updated_at", "updated_by")
