"""Routes of the connectors: webhook receivers and, when SANDBOX_ENABLED, the sandboxes."""
from django.conf import settings
from django.urls import include, path

from connectors.tiktok_shop.webhooks import tiktok_webhook

urlpatterns: list = [
    path("webhooks/tiktok/<slug:webhook_slug>/", tiktok_webhook, name="tiktok_webhook"),
]

if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/", include("connectors.tiktok_shop.sandbox.urls"))]
