"""Sandbox routes, mounted under ``sandbox/`` by connectors/urls.py when SANDBOX_ENABLED:
``/sandbox/tiktok/<api path>`` (Open API) and ``/sandbox/tiktok-auth/api/v2/token/...``."""
from django.urls import path

from connectors.tiktok_shop.sandbox import views

urlpatterns = [
    path("tiktok-auth/api/v2/token/get", views.token_get, name="tiktok_sandbox_token_get"),
    path("tiktok-auth/api/v2/token/refresh", views.token_refresh, name="tiktok_sandbox_token_refresh"),
    path("tiktok/<path:api_path>", views.open_api, name="tiktok_sandbox_api"),
]
