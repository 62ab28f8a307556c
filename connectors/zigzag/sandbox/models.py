"""State of the fake ZigZag: accounts, tokens, returns and outgoing webhooks.

A peer of ReturnSync, not part of it: nothing here is read by the connector except over
HTTP. Items are kept as JSON on the return (id, item_reference, sku, name, quantity,
received_quantity, grade, unit_price).
"""
from __future__ import annotations

from django.db import models


class ZigZagAccount(models.Model):
    """An enterprise API user: credentials, where its webhooks go, and its faults."""

    username = models.CharField(max_length=100, unique=True)
    password = models.CharField(max_length=100)
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    webhook_secret = models.CharField(max_length=200, blank=True, default="")
    default_location = models.CharField(max_length=64, default="ZZ-LDN-1")
    faults = models.JSONField(blank=True, default=dict)
    call_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.username


class ZigZagToken(models.Model):
    account = models.ForeignKey(ZigZagAccount, on_delete=models.CASCADE, related_name="tokens")
    token = models.CharField(max_length=400, unique=True)
    expires_at = models.BigIntegerField()
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]


class ZigZagReturn(models.Model):
    account = models.ForeignKey(ZigZagAccount, on_delete=models.CASCADE, related_name="returns")
    return_id = models.CharField(max_length=40, unique=True)
    reference = models.CharField(max_length=64, help_text="The retailer's id (the TikTok return id): unique.")
    order_reference = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=40, default="Approved")
    location = models.CharField(max_length=64, blank=True, default="")
    tracking_number = models.CharField(max_length=64, blank=True, default="")
    carrier = models.CharField(max_length=64, blank=True, default="")
    currency = models.CharField(max_length=3, blank=True, default="")
    customer = models.JSONField(blank=True, default=dict)
    items = models.JSONField(default=list)
    created_at = models.DateTimeField()
    updated_at = models.DateTimeField()
    received_at = models.DateTimeField(null=True, blank=True, help_text="When the warehouse scanned it in.")
    graded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-id"]
        verbose_name = "sandbox ZigZag return"
        constraints = [
            models.UniqueConstraint(fields=["account", "reference"], name="zz_sandbox_return_unique_reference"),
        ]
        indexes = [models.Index(fields=["account", "updated_at"], name="zz_sandbox_return_updated_idx")]

    def __str__(self) -> str:
        return f"{self.return_id} ({self.reference}) {self.status}"


class ZigZagWebhook(models.Model):
    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DROPPED = "dropped", "Dropped (fault)"
        FAILED = "failed", "Failed"

    account = models.ForeignKey(ZigZagAccount, on_delete=models.CASCADE, related_name="webhooks")
    event_id = models.CharField(max_length=64, unique=True)
    event = models.CharField(max_length=64)
    body = models.TextField()
    status = models.CharField(max_length=20, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "id"], name="zz_sandbox_webhook_status_idx")]
