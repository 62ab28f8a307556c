from django.apps import AppConfig


class TikTokShopConfig(AppConfig):
    """The TikTok Shop connector: client, mapping, webhooks, sync jobs and commands."""

    name = "connectors.tiktok_shop"
    label = "tiktok_shop"
    verbose_name = "TikTok Shop connector"
