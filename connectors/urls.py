"""Routes of the connectors, built from the registry: one webhook receiver route per
installed connector (``/webhooks/<slug>/<webhook_slug>/``, named ``<slug>_webhook``), each
connector's own pages, and, when SANDBOX_ENABLED, the sandboxes under ``/sandbox/``."""
from django.conf import settings
from django.urls import include, path

from connectors.webhooks import webhook_receive
from returnsync import registry

urlpatterns: list = [
    path(f"webhooks/{c.slug}/<slug:webhook_slug>/", webhook_receive, {"kind": c.kind}, name=f"{c.slug}_webhook")
    for c in registry.connectors() if c.webhook is not None
]
urlpatterns += [path(f"{c.slug}/", include(c.urls)) for c in registry.connectors() if c.urls]

if settings.SANDBOX_ENABLED:
    urlpatterns += [path("sandbox/", include(c.sandbox.urls)) for c in registry.connectors()
                    if c.sandbox is not None and c.sandbox.urls]
