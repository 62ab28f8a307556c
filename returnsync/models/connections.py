from __future__ import annotations

import secrets

from django.db import models
from django.urls import reverse

from returnsync.choices import System
from returnsync.crypto import EncryptedJSONField, EncryptedTextField
from returnsync.history import TrackedHistory
from returnsync.models.base import TimeStamped


def _webhook_slug() -> str:
    return secrets.token_urlsafe(12)


class Connection(TimeStamped):
    """One account on one external system: where it lives and how to authenticate.

    ``credentials`` (API keys, app secret, username/password, tokens) and
    ``webhook_secret`` are encrypted at rest and never rendered back to a page.
    ``options`` holds the vendor-specific, non-secret settings (shop cipher,
    endpoint paths, status-table overrides).
    """

    name = models.CharField(max_length=100)
    kind = models.CharField(max_length=20, choices=System.choices)
    base_url = models.URLField(max_length=300)
    credentials = EncryptedJSONField(blank=True, default=dict)
    webhook_secret = EncryptedTextField(blank=True, default="")
    webhook_slug = models.SlugField(
        max_length=40, unique=True, default=_webhook_slug,
        help_text="Unguessable path segment of this connection's webhook URL.",
    )
    is_sandbox = models.BooleanField("sandbox", default=False)
    is_enabled = models.BooleanField("enabled", default=True)
    poll_interval_seconds = models.PositiveIntegerField(default=300)
    rate_limit_per_second = models.PositiveIntegerField(default=50)
    options = models.JSONField(blank=True, default=dict)
    last_success_at = models.DateTimeField(null=True, blank=True)
    last_error_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    # The latest "Test connection" an admin ran (``services.connection_test_run``).
    last_test_at = models.DateTimeField(null=True, blank=True)
    last_test_ok = models.BooleanField(null=True, blank=True)
    last_test_message = models.TextField(blank=True, default="")

    # Never the secrets (no column for them in the history table), nor the health stamps.
    history = TrackedHistory(excluded_fields=[
        "credentials", "webhook_secret", "last_success_at", "last_error_at", "last_error",
        "last_test_at", "last_test_ok", "last_test_message", "updated_at",
    ])

    class Meta:
        ordering = ["kind", "name"]
        constraints = [
            models.UniqueConstraint(fields=["kind", "name"], name="connection_unique_kind_name"),
            models.CheckConstraint(
                condition=models.Q(poll_interval_seconds__gte=10), name="connection_poll_interval_min"
            ),
            models.CheckConstraint(
                condition=models.Q(rate_limit_per_second__gte=1), name="connection_rate_limit_min"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} · {self.name}"

    @property
    def has_credentials(self) -> bool:
        return bool(self.credentials)

    @property
    def is_healthy(self) -> bool:
        if self.last_error_at is None:
            return True
        return self.last_success_at is not None and self.last_success_at > self.last_error_at

    def get_absolute_url(self) -> str:
        return reverse("connection_list") + f"?id={self.pk}"
