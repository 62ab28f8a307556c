"""State of the fake TikTok Shop, multi-tenant by app (app_key) and shop.

Everything the sandbox serves lives here, separate from our own domain tables: the
sandbox is a peer, not part of ReturnSync. Times are unix seconds, as on the wire.
Returns and orders keep their full wire payload in ``data``; the columns next to it
are the indexed copies the search endpoint filters and sorts on.
"""
from __future__ import annotations

from django.db import models


class SandboxApp(models.Model):
    """A TikTok Shop partner app: key, secret, webhook URL and its fault settings."""

    app_key = models.CharField(max_length=64, unique=True)
    app_secret = models.CharField(max_length=128)
    webhook_url = models.URLField(max_length=500, blank=True, default="")
    faults = models.JSONField(blank=True, default=dict)
    call_count = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.app_key


class SandboxShop(models.Model):
    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE, related_name="shops")
    shop_id = models.CharField(max_length=40)
    cipher = models.CharField(max_length=80, unique=True)
    name = models.CharField(max_length=100)
    region = models.CharField(max_length=8, default="US")
    code = models.CharField(max_length=20)
    warehouses = models.JSONField(default=list)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["app", "shop_id"], name="sandbox_shop_unique_app_shop"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.shop_id})"


class SandboxToken(models.Model):
    """Access/refresh token pairs; a pair may also start life as an unused auth code."""

    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE, related_name="tokens")
    auth_code = models.CharField(max_length=80, blank=True, default="", db_index=True)
    auth_code_used = models.BooleanField(default=False)
    access_token = models.CharField(max_length=80, unique=True)
    access_token_expires_at = models.BigIntegerField()
    refresh_token = models.CharField(max_length=80, unique=True)
    refresh_token_expires_at = models.BigIntegerField()
    revoked = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]


class SandboxOrder(models.Model):
    shop = models.ForeignKey(SandboxShop, on_delete=models.CASCADE, related_name="orders")
    order_id = models.CharField(max_length=40)
    status = models.CharField(max_length=40)
    create_time = models.BigIntegerField()
    update_time = models.BigIntegerField()
    data = models.JSONField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "order_id"], name="sandbox_order_unique_shop_order"),
        ]


class SandboxReturn(models.Model):
    shop = models.ForeignKey(SandboxShop, on_delete=models.CASCADE, related_name="returns")
    return_id = models.CharField(max_length=40)
    order_id = models.CharField(max_length=40, db_index=True)
    return_type = models.CharField(max_length=30)
    return_status = models.CharField(max_length=60)
    create_time = models.BigIntegerField()
    update_time = models.BigIntegerField()
    # Seller decisions already applied (e.g. APPROVE_RETURN) and whether the parcel was
    # accepted: the state machine's memory for "already approved/received".
    decisions = models.JSONField(default=list, blank=True)
    received = models.BooleanField(default=False)
    data = models.JSONField()

    class Meta:
        ordering = ["id"]
        constraints = [
            models.UniqueConstraint(fields=["shop", "return_id"], name="sandbox_return_unique_shop_return"),
        ]
        indexes = [
            models.Index(fields=["shop", "update_time", "id"], name="sandbox_return_shop_upd"),
            models.Index(fields=["shop", "create_time", "id"], name="sandbox_return_shop_crt"),
        ]


class SandboxReturnRecord(models.Model):
    """One row per state change of a return (served by GET .../returns/{id}/records)."""

    ret = models.ForeignKey(SandboxReturn, on_delete=models.CASCADE, related_name="records")
    event = models.CharField(max_length=60)
    description = models.CharField(max_length=300)
    note = models.CharField(max_length=300, blank=True, default="")
    return_status = models.CharField(max_length=60)
    create_time = models.BigIntegerField()

    class Meta:
        ordering = ["create_time", "id"]


class SandboxIdempotency(models.Model):
    """The answer given to a write carrying ``idempotency_key``; replays get it again."""

    shop = models.ForeignKey(SandboxShop, on_delete=models.CASCADE, related_name="+")
    key = models.CharField(max_length=200)
    operation = models.CharField(max_length=200)
    http_status = models.PositiveSmallIntegerField(default=200)
    response = models.JSONField()
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [
            models.UniqueConstraint(fields=["shop", "key"], name="sandbox_idempotency_unique_shop_key"),
        ]


class SandboxInventory(models.Model):
    shop = models.ForeignKey(SandboxShop, on_delete=models.CASCADE, related_name="inventory")
    product_id = models.CharField(max_length=40)
    sku_id = models.CharField(max_length=40)
    seller_sku = models.CharField(max_length=100, blank=True, default="")
    warehouse_id = models.CharField(max_length=40)
    quantity = models.IntegerField(default=0)

    class Meta:
        ordering = ["product_id", "sku_id", "warehouse_id"]
        constraints = [
            models.UniqueConstraint(
                fields=["shop", "sku_id", "warehouse_id"], name="sandbox_inventory_unique_sku_wh"
            ),
        ]
        indexes = [models.Index(fields=["shop", "product_id"], name="sandbox_inventory_product")]


class SandboxWebhook(models.Model):
    """Outbox of notifications, delivered by ``api.deliver_webhooks()``."""

    class Status(models.TextChoices):
        PENDING = "pending", "Pending"
        DELIVERED = "delivered", "Delivered"
        DROPPED = "dropped", "Dropped (fault)"
        FAILED = "failed", "Failed"

    app = models.ForeignKey(SandboxApp, on_delete=models.CASCADE, related_name="webhooks")
    tts_notification_id = models.CharField(max_length=40, unique=True)
    type = models.PositiveSmallIntegerField()
    body = models.TextField()
    status = models.CharField(max_length=10, choices=Status.choices, default=Status.PENDING)
    attempts = models.PositiveIntegerField(default=0)
    last_status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)
    delivered_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["id"]
        indexes = [models.Index(fields=["status", "id"], name="sandbox_webhook_status")]


class SandboxWebhookAttempt(models.Model):
    webhook = models.ForeignKey(SandboxWebhook, on_delete=models.CASCADE, related_name="attempt_log")
    at = models.DateTimeField(auto_now_add=True)
    status_code = models.PositiveSmallIntegerField(null=True, blank=True)
    error = models.TextField(blank=True, default="")
    duplicate = models.BooleanField(default=False)

    class Meta:
        ordering = ["id"]
