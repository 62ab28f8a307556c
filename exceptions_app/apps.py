from django.apps import AppConfig


class ExceptionsConfig(AppConfig):
    """Exception rules, lifecycle and queues. Registers with the core what it adds: the
    incremental detection (a change listener), its schedules, and its part of the home,
    return and finance pages."""

    name = "exceptions_app"
    verbose_name = "Exceptions"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from exceptions_app import notify_tasks, pages, tasks
        from returnsync import registry

        registry.change_listener_register(tasks.detect_changed)
        registry.schedule_setup_register(tasks.schedules_ensure)
        registry.schedule_setup_register(notify_tasks.schedules_ensure)
        registry.page_context_register("home", pages.home_context)
        registry.page_context_register("return_detail", pages.return_detail_context)
        registry.page_context_register("portal_return_detail", pages.portal_return_detail_context)
        registry.page_context_register("finance", pages.finance_context)
        registry.page_context_register("sync_health", pages.sync_health_context)
        registry.tolerance_provider_register(tasks.refund_tolerance)
