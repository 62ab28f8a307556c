"""System checks of the deployment (``manage.py check --deploy``)."""
from __future__ import annotations

from django.conf import settings
from django.core.checks import Tags, Warning, register


@register(Tags.security, deploy=True)
def sandbox_in_production(app_configs, **kwargs):
    if getattr(settings, "PRODUCTION", False) and getattr(settings, "SANDBOX_ENABLED", False):
        return [Warning("SANDBOX_ENABLED is on in production: the fake TikTok and portal servers are served "
                        "under /sandbox/ and their tables installed.", hint="Unset SANDBOX_ENABLED unless this "
                        "is a test deployment (bench/soak.py runs one).", id="returnsync.W001")]
    return []
