from django.apps import AppConfig


class TikTokSandboxConfig(AppConfig):
    """A fake TikTok Shop speaking the real wire format (served only when SANDBOX_ENABLED)."""

    name = "connectors.tiktok_shop.sandbox"
    label = "tiktok_sandbox"
    verbose_name = "Sandbox: TikTok Shop"
    default_auto_field = "django.db.models.BigAutoField"
