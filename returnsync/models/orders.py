from __future__ import annotations

from django.db import models

from returnsync.models.base import TimeStamped, currency_field, money_field, non_negative


class Order(TimeStamped):
    """A TikTok Shop order: the anchor every other system's record hangs from."""

    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.PROTECT, related_name="orders", db_index=False
    )  # indexed by order_unique_per_connection
    order_id = models.CharField("TikTok order id", max_length=64)
    raw_status = models.CharField(max_length=64, blank=True, default="")
    buyer_postal_code = models.CharField(max_length=20, blank=True, default="")
    currency = currency_field()
    placed_at = models.DateTimeField(null=True, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(blank=True, default=dict)

    class Meta:
        ordering = ["-placed_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "order_id"], name="order_unique_per_connection"),
        ]
        indexes = [
            models.Index(fields=["order_id"], name="order_order_id_idx"),
            models.Index(fields=["buyer_postal_code"], name="order_postal_code_idx"),
            models.Index(fields=["-placed_at", "-id"], name="order_default_ordering_idx"),
        ]

    def __str__(self) -> str:
        return self.order_id


class OrderLine(models.Model):
    """One unit sold (TikTok gives one line per unit). A bundle line lists its components."""

    order = models.ForeignKey(Order, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_id = models.CharField(max_length=64)
    sku_id = models.CharField(max_length=64, blank=True, default="")
    seller_sku = models.CharField(max_length=100, blank=True, default="")
    product_id = models.CharField(max_length=64, blank=True, default="")
    product_name = models.CharField(max_length=300, blank=True, default="")
    sale_price = money_field()
    currency = currency_field()

    class Meta:
        ordering = ["order", "line_id"]
        constraints = [
            models.UniqueConstraint(fields=["order", "line_id"], name="orderline_unique_per_order"),
            non_negative("sale_price", "orderline"),
        ]
        indexes = [models.Index(fields=["seller_sku"], name="orderline_seller_sku_idx")]

    def __str__(self) -> str:
        return f"{self.seller_sku or self.sku_id} @ {self.sale_price} {self.currency}"


class OrderLineComponent(models.Model):
    """A component of a virtual bundle as TikTok listed it (``combined_listing_skus``)."""

    line = models.ForeignKey(OrderLine, on_delete=models.CASCADE, related_name="components", db_index=False)
    sku_id = models.CharField(max_length=64, blank=True, default="")
    seller_sku = models.CharField(max_length=100, blank=True, default="")
    product_id = models.CharField(max_length=64, blank=True, default="")
    quantity = models.PositiveIntegerField(default=1)

    class Meta:
        ordering = ["line", "seller_sku"]
        constraints = [
            models.UniqueConstraint(fields=["line", "sku_id", "seller_sku"], name="orderlinecomponent_unique"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="orderlinecomponent_quantity_min"),
        ]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.seller_sku or self.sku_id}"
