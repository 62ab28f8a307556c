from __future__ import annotations

from django.db import models

from returnsync.choices import AdjustmentReason, JobStatus
from returnsync.history import BundleHistoryBase, TrackedHistory
from returnsync.models.base import TimeStamped


class BundleMapping(TimeStamped):
    """A bundle sold as one SKU and returned one component at a time.

    The components' price shares must sum to exactly 1: enforced by
    ``returnsync.services.bundle_mapping_save`` (a sum cannot be a row constraint).
    """

    bundle_sku = models.CharField(max_length=100, unique=True)
    name = models.CharField(max_length=200, blank=True, default="")
    is_active = models.BooleanField("active", default=True)

    # One row per version, its components included (``returnsync.history``).
    history = TrackedHistory(bases=[BundleHistoryBase], excluded_fields=["updated_at"])

    class Meta:
        ordering = ["bundle_sku"]

    def __str__(self) -> str:
        return self.bundle_sku


class BundleComponent(models.Model):
    bundle = models.ForeignKey(BundleMapping, on_delete=models.CASCADE, related_name="components")
    component_sku = models.CharField(max_length=100)
    quantity = models.PositiveIntegerField(default=1)
    price_share = models.DecimalField(
        max_digits=7, decimal_places=6, help_text="Fraction of the bundle price this component carries (0–1]."
    )

    class Meta:
        ordering = ["bundle", "component_sku"]
        constraints = [
            models.UniqueConstraint(fields=["bundle", "component_sku"], name="bundlecomponent_unique"),
            models.CheckConstraint(condition=models.Q(quantity__gte=1), name="bundlecomponent_quantity_min"),
            models.CheckConstraint(
                condition=models.Q(price_share__gt=0, price_share__lte=1), name="bundlecomponent_share_range"
            ),
        ]
        indexes = [models.Index(fields=["component_sku"], name="bundlecomponent_sku_idx")]

    def __str__(self) -> str:
        return f"{self.quantity} × {self.component_sku} ({self.price_share})"


class WarehouseMapping(TimeStamped):
    """A portal's warehouse/location code → the TikTok warehouse whose stock it feeds."""

    connection = models.ForeignKey("returnsync.Connection", on_delete=models.CASCADE, related_name="warehouse_mappings")
    location_code = models.CharField(max_length=64)
    tiktok_warehouse_id = models.CharField("TikTok warehouse id", max_length=64)
    name = models.CharField(max_length=200, blank=True, default="")
    is_default = models.BooleanField(default=False, help_text="Used when a return names no location.")

    history = TrackedHistory(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["connection", "location_code"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "location_code"], name="warehousemapping_unique_code"),
            models.UniqueConstraint(
                fields=["connection"], condition=models.Q(is_default=True), name="warehousemapping_one_default"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.location_code} → {self.tiktok_warehouse_id}"


class InventoryAdjustment(TimeStamped):
    """Stock to put back on sale (or correct) for one SKU at one TikTok warehouse.

    ``idempotency_key`` is derived from what caused it (the graded portal line and
    component), so however often grading is replayed the stock moves once.
    """

    seller_sku = models.CharField(max_length=100)
    sku_id = models.CharField("TikTok SKU id", max_length=64, blank=True, default="")
    product_id = models.CharField("TikTok product id", max_length=64, blank=True, default="")
    warehouse_id = models.CharField("TikTok warehouse id", max_length=64)
    delta = models.IntegerField()
    reason = models.CharField(max_length=20, choices=AdjustmentReason.choices, default=AdjustmentReason.RESTOCK)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    idempotency_key = models.CharField(max_length=200, unique=True)
    portal_return_line = models.ForeignKey(
        "returnsync.PortalReturnLine", on_delete=models.SET_NULL, null=True, blank=True,
        related_name="inventory_adjustments",
    )
    write_back = models.ForeignKey(
        "returnsync.WriteBack", on_delete=models.SET_NULL, null=True, blank=True, related_name="inventory_adjustments"
    )
    applied_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(condition=~models.Q(delta=0), name="inventoryadjustment_delta_non_zero"),
        ]
        indexes = [
            models.Index(fields=["status", "created_at"], name="invadj_status_created_idx"),
            models.Index(fields=["seller_sku", "warehouse_id"], name="invadj_sku_warehouse_idx"),
            models.Index(fields=["-created_at", "-id"], name="invadj_default_ordering_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.delta:+d} {self.seller_sku} @ {self.warehouse_id}"
