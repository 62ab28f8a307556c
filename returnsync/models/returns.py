from __future__ import annotations

from django.db import models
from django.urls import reverse

from returnsync.choices import Grade, ReleaseState, Stage
from returnsync.models.base import TimeStamped, currency_field, money_field, non_negative


class MarketplaceReturn(TimeStamped):
    """A TikTok Shop return/refund request, as TikTok last described it."""

    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.PROTECT, related_name="marketplace_returns", db_index=False
    )  # indexed by marketplacereturn_unique_per_connection
    return_id = models.CharField("TikTok return id", max_length=64)
    order_ref = models.CharField("TikTok order id", max_length=64)
    order = models.ForeignKey(
        "returnsync.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="marketplace_returns",
        help_text="Set once the order has been fetched; order_ref always holds the id.",
    )
    return_type = models.CharField(max_length=40, blank=True, default="")
    raw_status = models.CharField(max_length=64, blank=True, default="")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.REQUESTED)
    role = models.CharField(max_length=20, blank=True, default="")
    reason = models.CharField(max_length=300, blank=True, default="")
    tracking_number = models.CharField(max_length=100, blank=True, default="")
    carrier = models.CharField(max_length=100, blank=True, default="")
    refund_total = money_field(null=True, blank=True)
    # TikTok's refund figure in parts: money is compared like with like (an item price with the
    # subtotal, not with a total that includes tax and shipping).
    refund_subtotal = money_field(null=True, blank=True)
    refund_shipping = money_field(null=True, blank=True)
    refund_tax = money_field(null=True, blank=True)
    currency = currency_field()
    # A partial refund the seller offered (OFFER_PARTIAL_REFUND) and the buyer's answer.
    seller_proposed_return_type = models.CharField(max_length=40, blank=True, default="")
    partial_refund_offered = money_field(null=True, blank=True)
    buyer_rejected_partial_refund = models.BooleanField(null=True, blank=True)
    is_combined_return = models.BooleanField(default=False)
    combined_return_id = models.CharField(max_length=64, blank=True, default="")
    next_action = models.CharField(max_length=64, blank=True, default="")
    next_action_deadline = models.DateTimeField(null=True, blank=True)
    source_created_at = models.DateTimeField(null=True, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(blank=True, default=dict)

    class Meta:
        ordering = ["-source_created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "return_id"], name="marketplacereturn_unique_per_connection"),
            non_negative("refund_total", "marketplacereturn"),
            non_negative("refund_subtotal", "marketplacereturn"),
            non_negative("partial_refund_offered", "marketplacereturn"),
        ]
        indexes = [
            models.Index(fields=["return_id"], name="mreturn_return_id_idx"),
            models.Index(fields=["order_ref"], name="mreturn_order_ref_idx"),
            models.Index(fields=["tracking_number"], name="mreturn_tracking_idx"),
            models.Index(fields=["stage", "next_action_deadline"], name="mreturn_stage_deadline_idx"),
            models.Index(fields=["-source_created_at", "-id"], name="mreturn_default_ordering_idx"),
            # Only the few combined returns are indexed (most have none): the return page lists a
            # combined return's siblings, and the search box finds them by the combined id.
            models.Index(fields=["connection", "combined_return_id"], name="mreturn_combined_idx",
                         condition=~models.Q(combined_return_id="")),
        ]

    def __str__(self) -> str:
        return f"TikTok return {self.return_id}"

    def get_absolute_url(self) -> str:
        return reverse("return_detail", args=[self.pk])


class MarketplaceReturnLine(models.Model):
    """One returned unit on TikTok (return lines have no quantity)."""

    marketplace_return = models.ForeignKey(
        MarketplaceReturn, on_delete=models.CASCADE, related_name="lines", db_index=False
    )
    line_id = models.CharField(max_length=64)
    order_line_id = models.CharField(max_length=64, blank=True, default="")
    sku_id = models.CharField(max_length=64, blank=True, default="")
    seller_sku = models.CharField(max_length=100, blank=True, default="")
    product_name = models.CharField(max_length=300, blank=True, default="")
    refund_amount = money_field(null=True, blank=True)
    currency = currency_field()

    class Meta:
        ordering = ["marketplace_return", "line_id"]
        constraints = [
            models.UniqueConstraint(fields=["marketplace_return", "line_id"], name="mreturnline_unique_per_return"),
            non_negative("refund_amount", "mreturnline"),
        ]

    def __str__(self) -> str:
        return f"{self.seller_sku or self.sku_id} ({self.line_id})"


class PortalReturn(TimeStamped):
    """A return as the portal (ZigZag, ReturnGo, Loop) knows it.

    ``return_ref`` is the TikTok return id the portal record carries once linked;
    ``order_ref`` the TikTok order id it was opened against (may match nothing:
    that is an orphan).
    """

    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.PROTECT, related_name="portal_returns", db_index=False
    )  # indexed by portalreturn_unique_per_connection
    external_id = models.CharField("portal return id", max_length=64)
    order_ref = models.CharField("TikTok order id", max_length=64, blank=True, default="")
    return_ref = models.CharField("TikTok return id", max_length=64, blank=True, default="")
    marketplace_return = models.ForeignKey(
        MarketplaceReturn, on_delete=models.SET_NULL, null=True, blank=True, related_name="portal_returns"
    )
    order = models.ForeignKey(
        "returnsync.Order", on_delete=models.SET_NULL, null=True, blank=True, related_name="portal_returns"
    )
    raw_status = models.CharField(max_length=64, blank=True, default="")
    stage = models.CharField(max_length=20, choices=Stage.choices, default=Stage.REQUESTED)
    tracking_number = models.CharField(max_length=100, blank=True, default="")
    carrier = models.CharField(max_length=100, blank=True, default="")
    warehouse_code = models.CharField(max_length=64, blank=True, default="")
    authorized_refund = money_field(null=True, blank=True)
    currency = currency_field()
    received_at = models.DateTimeField(null=True, blank=True, help_text="When the portal scanned the parcel in.")
    inspected_at = models.DateTimeField(null=True, blank=True)
    release_state = models.CharField(
        max_length=30, choices=ReleaseState.choices, blank=True, default="",
        help_text="Where the return stands at the refund gate (returnsync.refund_gate).",
    )
    release_note = models.CharField(max_length=300, blank=True, default="", help_text="Why, in a sentence.")
    expected_refund = money_field(
        null=True, blank=True,
        help_text="What the buyer should get back in all, like TikTok's refund figure (tax and shipping "
                  "included): the portal's authorised value, else the value of what came back (returnsync.money). "
                  "Empty until the parcel is received.",
    )
    partial_refund_amount = money_field(
        null=True, blank=True,
        help_text="Set when fewer items came back than expected or one failed grading: what the buyer "
                  "should get back, to settle by hand in Seller Center (see returnsync.money).",
    )
    partial_refund_detail = models.JSONField(
        blank=True, default=dict, help_text="Per-line breakdown of partial_refund_amount (PartialRefund.as_json).",
    )
    source_created_at = models.DateTimeField(null=True, blank=True)
    source_updated_at = models.DateTimeField(null=True, blank=True)
    raw = models.JSONField(blank=True, default=dict)

    class Meta:
        ordering = ["-source_created_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["connection", "external_id"], name="portalreturn_unique_per_connection"),
            # One portal record per TikTok return per portal: mirroring twice is impossible.
            models.UniqueConstraint(
                fields=["connection", "return_ref"], condition=~models.Q(return_ref=""),
                name="portalreturn_unique_return_ref",
            ),
            non_negative("authorized_refund", "portalreturn"),
            non_negative("partial_refund_amount", "portalreturn"),
            non_negative("expected_refund", "portalreturn"),
        ]
        indexes = [
            models.Index(fields=["order_ref"], name="preturn_order_ref_idx"),
            models.Index(fields=["return_ref"], name="preturn_return_ref_idx"),
            models.Index(fields=["tracking_number"], name="preturn_tracking_idx"),
            models.Index(fields=["stage"], name="preturn_stage_idx"),
            models.Index(fields=["release_state"], name="preturn_release_state_idx"),
            models.Index(fields=["-source_created_at", "-id"], name="preturn_default_ordering_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.connection.get_kind_display() if self.connection_id else 'Portal'} return {self.external_id}"


class PortalReturnLine(models.Model):
    """An item on a portal return: how many were expected back, received, and their grade."""

    portal_return = models.ForeignKey(PortalReturn, on_delete=models.CASCADE, related_name="lines", db_index=False)
    line_id = models.CharField(max_length=64)
    order_line = models.ForeignKey(
        "returnsync.OrderLine", on_delete=models.SET_NULL, null=True, blank=True, related_name="portal_return_lines"
    )
    sku = models.CharField(max_length=100, blank=True, default="")
    product_name = models.CharField(max_length=300, blank=True, default="")
    expected_quantity = models.PositiveIntegerField(default=1)
    received_quantity = models.PositiveIntegerField(default=0)
    grade = models.CharField(max_length=20, choices=Grade.choices, default=Grade.PENDING)
    raw_grade = models.CharField(max_length=64, blank=True, default="")
    location_code = models.CharField(
        max_length=64, blank=True, default="",
        help_text="Where this item was put away, when the portal says per item (else the return's location).",
    )
    unit_price = money_field(null=True, blank=True)
    currency = currency_field()

    class Meta:
        ordering = ["portal_return", "line_id"]
        constraints = [
            models.UniqueConstraint(fields=["portal_return", "line_id"], name="preturnline_unique_per_return"),
            models.CheckConstraint(
                condition=models.Q(received_quantity__lte=models.F("expected_quantity")),
                name="preturnline_received_lte_expected",
            ),
            non_negative("unit_price", "preturnline"),
        ]
        indexes = [models.Index(fields=["sku"], name="preturnline_sku_idx")]

    def __str__(self) -> str:
        return f"{self.sku}: {self.received_quantity}/{self.expected_quantity} {self.grade}"
