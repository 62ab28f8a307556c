from django.apps import AppConfig
from django.conf import settings


class ZigZagConfig(AppConfig):
    """The ZigZag connector: client, mapping, webhooks, the mirror, the warehouse CSV fallback."""

    name = "connectors.zigzag"
    label = "zigzag"
    verbose_name = "ZigZag connector"

    def ready(self) -> None:
        from connectors.zigzag import services, tasks
        from connectors.zigzag.connector import connector
        from returnsync import registry
        from returnsync.roles import NavItem, Role, roles_with_admin

        registry.register(connector(sandbox=settings.SANDBOX_ENABLED))
        registry.change_listener_register(services.mirror_for_orders)
        registry.schedule_setup_register(tasks.schedules_ensure)
        registry.nav_register(NavItem("zigzag_csv_upload", "Warehouse CSV", roles_with_admin(Role.OPERATIONS)))
