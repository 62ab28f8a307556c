"""Routes of the connectors: webhook receivers, connector pages and, when SANDBOX_ENABLED, the sandboxes."""
from django.conf import settings
from django.urls import include, path

from connectors.tiktok_shop.webhooks import tiktok_webhook
from connectors.zigzag.webhooks import zigzag_webhook

urlpatterns: list = [
    path("webhooks/tiktok/<slug:webhook_slug>/", tiktok_webhook, name="tiktok_webhook"),
    path("webhooks/zigzag/<slug:webhook_slug>/", zigzag_webhook, name="zigzag_webhook"),
    path("zigzag/", include("connectors.zigzag.urls")),
]

if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/", include("connectors.tiktok_shop.sandbox.urls")),
                    path("sandbox/", include("connectors.zigzag.sandbox.urls"))]
