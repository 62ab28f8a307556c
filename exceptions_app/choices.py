"""Statuses of the exception engine; badge colours are registered in returnsync.choices."""
from __future__ import annotations

from django.db import models


class ExceptionStatus(models.TextChoices):
    OPEN = "open", "Open"
    CLAIMED = "claimed", "Claimed"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"
    AUTO_RESOLVED = "auto_resolved", "Auto-resolved"

    @classmethod
    def active(cls) -> tuple[str, ...]:
        """Statuses that still need someone: at most one such row per (type, subject)."""
        return (cls.OPEN, cls.CLAIMED)


class Severity(models.TextChoices):
    LOW = "low", "Low"
    MEDIUM = "medium", "Medium"
    HIGH = "high", "High"
    CRITICAL = "critical", "Critical"

    @classmethod
    def rank(cls, value: str) -> int:
        return [cls.LOW, cls.MEDIUM, cls.HIGH, cls.CRITICAL].index(value)


class SubjectKind(models.TextChoices):
    """What an exception is about; ``ExceptionCase.subject_key`` is ``<kind>:<pk>``."""

    MARKETPLACE_RETURN = "marketplace_return", "TikTok return"
    PORTAL_RETURN = "portal_return", "Portal return"
    PORTAL_RETURN_LINE = "portal_return_line", "Portal return line"
    WRITE_BACK = "write_back", "Write-back"
    INBOUND_EVENT = "inbound_event", "Inbound event"


class ActivityVerb(models.TextChoices):
    OPENED = "opened", "Opened"
    REOPENED = "reopened", "Reopened"
    EVIDENCE_UPDATED = "evidence_updated", "Evidence updated"
    CLAIMED = "claimed", "Claimed"
    RELEASED = "released", "Released"
    REASSIGNED = "reassigned", "Reassigned"
    RESOLVED = "resolved", "Resolved"
    DISMISSED = "dismissed", "Dismissed"
    AUTO_RESOLVED = "auto_resolved", "Auto-resolved"
    RETRIED = "retried", "Retried failed step"
    OFFERED = "offered", "Offered a partial refund"
    BREACHED = "breached", "SLA breached"
    NOTIFIED = "notified", "Notified"
    COMMENTED = "commented", "Commented"


class ResolutionCode(models.TextChoices):
    FIXED_IN_SOURCE = "fixed_in_source", "Fixed in the source system"
    REFUNDED_MANUALLY = "refunded_manually", "Refunded by hand in Seller Center"
    REFUND_REJECTED = "refund_rejected", "Refund rejected in Seller Center (nothing due)"
    RECOVERY_STARTED = "recovery_started", "Recovery of an over-refund started"
    RESTOCKED_MANUALLY = "restocked_manually", "Restocked by hand"
    LINKED_MANUALLY = "linked_manually", "Linked the records by hand"
    RETRIED = "retried", "Retried successfully"
    CUSTOMER_CONTACTED = "customer_contacted", "Customer contacted"
    NO_ACTION_NEEDED = "no_action_needed", "No action needed"
    OTHER = "other", "Other (see note)"
