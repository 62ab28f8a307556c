from django.apps import AppConfig
from django.conf import settings


class TikTokShopConfig(AppConfig):
    """The TikTok Shop connector: client, mapping, webhooks, sync jobs and commands."""

    name = "connectors.tiktok_shop"
    label = "tiktok_shop"
    verbose_name = "TikTok Shop connector"

    def ready(self) -> None:
        from connectors.tiktok_shop.connector import connector
        from returnsync import registry

        registry.register(connector(sandbox=settings.SANDBOX_ENABLED))
