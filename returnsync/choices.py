"""Every status in the core domain, each carrying the colour its badge uses.

External systems' own status strings are never forced into these: they are kept raw
beside the canonical value (see ``returnsync.stages``).
"""
from __future__ import annotations

from django.db import models


class System(models.TextChoices):
    TIKTOK_SHOP = "tiktok_shop", "TikTok Shop"
    ZIGZAG = "zigzag", "ZigZag"
    RETURNGO = "returngo", "ReturnGo"
    LOOP = "loop", "Loop"
    PIPE17 = "pipe17", "Pipe17"

    @classmethod
    def portals(cls) -> tuple[str, ...]:
        return (cls.ZIGZAG, cls.RETURNGO, cls.LOOP)


class Stage(models.TextChoices):
    """The canonical return stage every system's raw status maps onto."""

    REQUESTED = "requested", "Requested"
    APPROVED = "approved", "Approved"
    LABEL_CREATED = "label_created", "Label created"
    IN_TRANSIT = "in_transit", "In transit"
    RECEIVED = "received", "Received"
    INSPECTED = "inspected", "Inspected"
    REFUNDED = "refunded", "Refunded"
    CLOSED = "closed", "Closed"
    REJECTED = "rejected", "Rejected"
    CANCELLED = "cancelled", "Cancelled"
    UNMAPPED = "unmapped", "Unmapped status"


class Grade(models.TextChoices):
    """Warehouse disposition of one returned unit."""

    PENDING = "pending", "Not graded"
    SELLABLE = "sellable", "Sellable"
    DAMAGED = "damaged", "Damaged"
    DEFECTIVE = "defective", "Defective"
    WRONG_ITEM = "wrong_item", "Wrong item"
    MISSING = "missing", "Missing"


class RefundStatus(models.TextChoices):
    PENDING = "pending", "Pending"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class JobStatus(models.TextChoices):
    """Life of a queued outbound action (write-back, inventory adjustment)."""

    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    RETRYING = "retrying", "Retrying"
    DEAD = "dead", "Failed for good"


class WriteBackAction(models.TextChoices):
    """Outbound actions. Stored as open strings: connectors may add their own."""

    APPROVE_RECEIVED_PACKAGE = "approve_received_package", "TikTok: approve received package"
    APPROVE_REFUND = "approve_refund", "TikTok: approve refund"
    APPROVE_RETURN = "approve_return", "TikTok: approve return"
    OFFER_PARTIAL_REFUND = "offer_partial_refund", "TikTok: offer partial refund"
    REJECT_RECEIVED_PACKAGE = "reject_received_package", "TikTok: reject received package"
    UPDATE_INVENTORY = "update_inventory", "TikTok: update inventory"
    CREATE_PORTAL_RETURN = "create_portal_return", "Portal: create return"


class ReleaseState(models.TextChoices):
    """Where a portal return stands at the refund gate (``returnsync.refund_gate``): the
    decision that releases the marketplace's full refund is sent only on the way to
    ``released``."""

    UNLINKED = "unlinked", "Not linked to a TikTok return"
    NOT_APPLICABLE = "not_applicable", "No refund to release"
    AWAITING_RECEIPT = "awaiting_receipt", "Waiting for the parcel"
    AWAITING_INSPECTION = "awaiting_inspection", "Waiting for inspection"
    AWAITING_AUTHORISATION = "awaiting_authorisation", "Waiting for the portal's authorised value"
    HELD_SHORT = "held_short", "Held: items missing"
    HELD_INSPECTION = "held_inspection", "Held: failed inspection"
    HELD_VALUE = "held_value", "Held: refund value differs"
    HELD_UNMAPPED = "held_unmapped", "Held: returned SKU not mapped"
    RELEASED = "released", "Release sent to TikTok"
    BY_PORTAL = "by_portal", "The portal releases the refund"
    REFUNDED = "refunded", "Refunded on TikTok"

    @classmethod
    def holds(cls) -> tuple[str, ...]:
        """The gate is holding the release on purpose (a person or the warehouse must act)."""
        return (cls.AWAITING_INSPECTION, cls.AWAITING_AUTHORISATION, cls.HELD_SHORT, cls.HELD_INSPECTION,
                cls.HELD_VALUE, cls.HELD_UNMAPPED)


class AdjustmentReason(models.TextChoices):
    RESTOCK = "restock", "Restock after grading"
    CORRECTION = "correction", "Manual correction"


class InboundStatus(models.TextChoices):
    RECEIVED = "received", "Received"
    PROCESSED = "processed", "Processed"
    IGNORED = "ignored", "Ignored (stale or unknown)"
    FAILED = "failed", "Dead letter"


class SyncRunStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    SUCCEEDED = "succeeded", "Succeeded"
    FAILED = "failed", "Failed"


class TimelineKind(models.TextChoices):
    """One row per thing that happened to a return, in any system."""

    CREATED = "created", "Created"
    STATUS_CHANGED = "status_changed", "Status changed"
    LINKED = "linked", "Linked across systems"
    LABEL_CREATED = "label_created", "Label created"
    TRACKING_UPDATED = "tracking_updated", "Tracking updated"
    RECEIVED = "received", "Received at warehouse"
    GRADED = "graded", "Graded"
    REFUND = "refund", "Refund"
    WRITE_BACK = "write_back", "Write-back"
    RESTOCK = "restock", "Restock"
    NOTE = "note", "Note"


# One place for every badge colour: key is the stored value, whatever enum it is from.
BADGE_COLORS: dict[str, str] = {
    # stages
    Stage.REQUESTED: "blue",
    Stage.APPROVED: "blue",
    Stage.LABEL_CREATED: "indigo",
    Stage.IN_TRANSIT: "indigo",
    Stage.RECEIVED: "teal",
    Stage.INSPECTED: "teal",
    Stage.REFUNDED: "green",
    Stage.CLOSED: "grey",
    Stage.REJECTED: "red",
    Stage.CANCELLED: "grey",
    Stage.UNMAPPED: "orange",
    # grades
    Grade.PENDING: "grey",
    Grade.SELLABLE: "green",
    Grade.DAMAGED: "red",
    Grade.DEFECTIVE: "red",
    Grade.WRONG_ITEM: "orange",
    Grade.MISSING: "red",
    # jobs and sync
    JobStatus.QUEUED: "blue",
    JobStatus.RUNNING: "indigo",
    JobStatus.SUCCEEDED: "green",
    JobStatus.RETRYING: "orange",
    JobStatus.DEAD: "red",
    InboundStatus.RECEIVED: "blue",
    InboundStatus.PROCESSED: "green",
    InboundStatus.IGNORED: "grey",
    InboundStatus.FAILED: "red",
    RefundStatus.FAILED: "red",
    # the refund gate
    ReleaseState.UNLINKED: "grey",
    ReleaseState.NOT_APPLICABLE: "grey",
    ReleaseState.AWAITING_RECEIPT: "blue",
    ReleaseState.AWAITING_INSPECTION: "indigo",
    ReleaseState.AWAITING_AUTHORISATION: "indigo",
    ReleaseState.HELD_SHORT: "orange",
    ReleaseState.HELD_INSPECTION: "orange",
    ReleaseState.HELD_VALUE: "red",
    ReleaseState.HELD_UNMAPPED: "orange",
    ReleaseState.RELEASED: "green",
    ReleaseState.BY_PORTAL: "indigo",
    ReleaseState.REFUNDED: "teal",
    RefundStatus.CANCELLED: "grey",
    # exceptions (exceptions_app.choices: ExceptionStatus, Severity)
    "open": "orange",
    "claimed": "indigo",
    "resolved": "green",
    "dismissed": "grey",
    "auto_resolved": "teal",
    "low": "grey",
    "medium": "blue",
    "high": "orange",
    "critical": "red",
}


def badge_color(value: str) -> str:
    return BADGE_COLORS.get(value, "grey")
