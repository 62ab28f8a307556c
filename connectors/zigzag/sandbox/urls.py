"""Mounted under ``sandbox/`` by connectors/urls.py when SANDBOX_ENABLED."""
from django.urls import path

from connectors.zigzag.sandbox import views

urlpatterns = [
    path("zigzag/token", views.token, name="zigzag_sandbox_token"),
    path("zigzag/returns", views.returns, name="zigzag_sandbox_returns"),
    path("zigzag/returns/<str:return_id>", views.return_detail, name="zigzag_sandbox_return"),
]
