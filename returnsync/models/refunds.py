from __future__ import annotations

from django.db import models

from returnsync.choices import RefundStatus, System
from returnsync.models.base import TimeStamped, currency_field, money_field


class Refund(TimeStamped):
    """Money given back, as any system reported it (TikTok, a portal, Pipe17).

    The source is the connection it came through.
    """

    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.PROTECT, related_name="refunds", db_index=False
    )  # indexed by refund_unique_per_connection
    external_id = models.CharField(max_length=64)
    order_ref = models.CharField("TikTok order id", max_length=64, blank=True, default="")
    marketplace_return = models.ForeignKey(
        "returnsync.MarketplaceReturn", on_delete=models.SET_NULL, null=True, blank=True, related_name="refunds"
    )
    portal_return = models.ForeignKey(
        "returnsync.PortalReturn", on_delete=models.SET_NULL, null=True, blank=True, related_name="refunds"
    )
    amount = money_field()
    currency = currency_field()
    raw_status = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=20, choices=RefundStatus.choices, default=RefundStatus.PENDING)
    refunded_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(blank=True, default=dict)

    class Meta:
        ordering = ["-refunded_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="refund_unique_per_connection"),
            models.CheckConstraint(condition=models.Q(amount__gte=0), name="refund_amount_non_negative"),
        ]
        indexes = [
            models.Index(fields=["order_ref"], name="refund_order_ref_idx"),
            models.Index(fields=["-refunded_at", "-id"], name="refund_default_ordering_idx"),
        ]

    @property
    def source(self) -> str:
        """The system that reported it: the connection's kind."""
        return System(self.connection.kind).label

    def __str__(self) -> str:
        return f"{self.source} refund {self.external_id}: {self.amount} {self.currency}"
