from django.apps import AppConfig
from django.db.models.signals import post_migrate


def _create_role_groups(sender, **kwargs) -> None:
    from returnsync.roles import ensure_role_groups

    ensure_role_groups()


class ReturnSyncConfig(AppConfig):
    name = "returnsync"
    verbose_name = "ReturnSync core"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from returnsync import checks, health, lifecycle, maintenance, registry  # noqa: F401 (checks registers)

        # Groups need the permissions post_migrate creates, so they are set up right after.
        post_migrate.connect(_create_role_groups, sender=self, dispatch_uid="returnsync_role_groups")
        # Portal returns are linked to TikTok returns as they arrive, and judged again when TikTok moves.
        registry.change_listener_register(lifecycle.portal_returns_refresh)
        registry.schedule_setup_register(maintenance.schedules_ensure)
        registry.schedule_setup_register(health.schedules_ensure)
        # A bundle's version in its change history carries its components.
        from simple_history.signals import pre_create_historical_record

        from returnsync.history import bundle_history_fill
        from returnsync.models import BundleMapping

        pre_create_historical_record.connect(bundle_history_fill, sender=BundleMapping.history.model,
                                             dispatch_uid="returnsync_bundle_history")
