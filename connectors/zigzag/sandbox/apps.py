from django.apps import AppConfig


class ZigZagSandboxConfig(AppConfig):
    """A fake ZigZag speaking the client's wire format (served only when SANDBOX_ENABLED)."""

    name = "connectors.zigzag.sandbox"
    label = "zigzag_sandbox"
    verbose_name = "Sandbox: ZigZag"
    default_auto_field = "django.db.models.BigAutoField"
