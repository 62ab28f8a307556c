"""Exceptions: one owned, SLA-timed task per disagreement between the systems.

``ExceptionCase`` is one occurrence of one rule on one subject. A database constraint
keeps at most one *active* (open or claimed) case per (type, subject). Every change of
state is an ``ExceptionActivity`` row. Per-type settings an admin may change
(thresholds, SLA, enabled) live in ``ExceptionTypeSetting``; defaults are the rule
classes in ``exceptions_app.rules``.
"""
from __future__ import annotations

from django.conf import settings
from django.db import models
from django.urls import reverse
from django.utils import timezone

from exceptions_app.choices import (
    ActivityVerb,
    ExceptionStatus,
    ResolutionCode,
    Severity,
    SubjectKind,
)
from returnsync.choices import System
from returnsync.history import TrackedHistory
from returnsync.models.base import TimeStamped, currency_field, money_field
from returnsync.roles import Role

ACTIVE = models.Q(status__in=ExceptionStatus.active())


class ExceptionCase(TimeStamped):
    type_code = models.CharField("type", max_length=64)
    subject_kind = models.CharField(max_length=32, choices=SubjectKind.choices)
    subject_id = models.BigIntegerField()
    subject_key = models.CharField(max_length=100, help_text="<subject_kind>:<subject_id>")
    owner_role = models.CharField(max_length=20, choices=Role.choices)
    severity = models.CharField(max_length=10, choices=Severity.choices, default=Severity.MEDIUM)
    status = models.CharField(max_length=20, choices=ExceptionStatus.choices, default=ExceptionStatus.OPEN)
    title = models.CharField(max_length=300)

    # Anchors for search and filters (copied from the subject at detection).
    system = models.CharField(max_length=20, choices=System.choices, blank=True, default="")
    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.SET_NULL, null=True, blank=True, related_name="exceptions"
    )
    order_ref = models.CharField("TikTok order id", max_length=64, blank=True, default="")
    return_ref = models.CharField("TikTok return id", max_length=64, blank=True, default="")
    portal_ref = models.CharField("portal return id", max_length=64, blank=True, default="")
    tracking_numbers = models.CharField(max_length=250, blank=True, default="", help_text="Space-separated.")
    buyer_postal_code = models.CharField(max_length=20, blank=True, default="")

    # Links to what it is about (any may be empty).
    marketplace_return = models.ForeignKey(
        "returnsync.MarketplaceReturn", on_delete=models.SET_NULL, null=True, blank=True, related_name="exceptions"
    )
    portal_return = models.ForeignKey(
        "returnsync.PortalReturn", on_delete=models.SET_NULL, null=True, blank=True, related_name="exceptions"
    )
    write_back = models.ForeignKey(
        "returnsync.WriteBack", on_delete=models.SET_NULL, null=True, blank=True, related_name="exceptions"
    )
    inbound_event = models.ForeignKey(
        "returnsync.InboundEvent", on_delete=models.SET_NULL, null=True, blank=True, related_name="exceptions"
    )

    # What both systems said, refreshed on every pass that still finds the condition.
    evidence = models.JSONField(blank=True, default=dict)
    fingerprint = models.CharField(
        max_length=64, blank=True, default="",
        help_text="Hash of the evidence values that matter: a case a person closed is not re-raised for the "
                  "same fingerprint.",
    )
    amount = money_field(null=True, blank=True, help_text="The money at stake (partial refund due, difference).")
    currency = currency_field()

    # Timing.
    opened_at = models.DateTimeField(default=timezone.now)
    last_detected_at = models.DateTimeField(default=timezone.now)
    due_at = models.DateTimeField(null=True, blank=True)
    breached_at = models.DateTimeField(null=True, blank=True)
    reopen_count = models.PositiveIntegerField(default=0)

    # Ownership (one assignee, claimed with a conditional update).
    assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="exceptions"
    )
    claimed_at = models.DateTimeField(null=True, blank=True)

    # Closing.
    closed_at = models.DateTimeField(null=True, blank=True)
    closed_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    resolution_code = models.CharField(max_length=32, choices=ResolutionCode.choices, blank=True, default="")
    resolution_note = models.TextField(blank=True, default="")
    resolved_amount = money_field(null=True, blank=True, help_text="Finance: the amount actually refunded.")

    # Notifications (digests).
    notified_at = models.DateTimeField(null=True, blank=True)
    breach_notified_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["due_at", "id"]
        constraints = [
            models.UniqueConstraint(
                fields=["type_code", "subject_key"], condition=ACTIVE, name="exceptioncase_one_active_per_subject"
            ),
            models.CheckConstraint(
                condition=~models.Q(status=ExceptionStatus.CLAIMED) | models.Q(assignee__isnull=False),
                name="exceptioncase_claimed_has_assignee",
            ),
            models.CheckConstraint(
                condition=models.Q(amount__gte=0) | models.Q(amount__isnull=True), name="exceptioncase_amount_non_negative"
            ),
            models.CheckConstraint(
                condition=models.Q(resolved_amount__gte=0) | models.Q(resolved_amount__isnull=True),
                name="exceptioncase_resolved_amount_non_negative",
            ),
        ]
        indexes = [
            # A role's queue and its counters (status, assignee, due time) from the index alone.
            models.Index(fields=["status", "owner_role", "due_at", "assignee"], name="exc_queue_idx"),
            models.Index(fields=["type_code", "status"], name="exc_type_status_idx"),
            models.Index(fields=["subject_key"], name="exc_subject_idx"),
            models.Index(fields=["order_ref"], name="exc_order_ref_idx"),
            models.Index(fields=["return_ref"], name="exc_return_ref_idx"),
            models.Index(fields=["assignee", "status"], name="exc_assignee_idx"),
            models.Index(fields=["due_at", "id"], name="exc_default_ordering_idx"),
            models.Index(fields=["buyer_postal_code"], name="exc_postal_code_idx"),
            models.Index(fields=["portal_ref"], name="exc_portal_ref_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.type_code} #{self.pk}: {self.title}"

    def get_absolute_url(self) -> str:
        return reverse("exception_detail", args=[self.pk])

    @property
    def is_active(self) -> bool:
        return self.status in ExceptionStatus.active()

    @property
    def is_breached(self) -> bool:
        return self.is_active and self.due_at is not None and self.due_at <= timezone.now()


class ExceptionActivity(models.Model):
    """One step in an exception's life: who (None = the system), when, from, to, note."""

    exception = models.ForeignKey(ExceptionCase, on_delete=models.CASCADE, related_name="activities")
    verb = models.CharField(max_length=32, choices=ActivityVerb.choices)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True)
    from_status = models.CharField(max_length=20, blank=True, default="")
    to_status = models.CharField(max_length=20, blank=True, default="")
    from_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    to_assignee = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )
    note = models.TextField(blank=True, default="")
    data = models.JSONField(blank=True, default=dict)
    created_at = models.DateTimeField(default=timezone.now)

    class Meta:
        ordering = ["created_at", "id"]
        indexes = [models.Index(fields=["exception", "created_at"], name="excactivity_exception_idx")]

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M} {self.verb} ({self.from_status} → {self.to_status})"


class ExceptionTypeSetting(models.Model):
    """An admin's overrides for one exception type; anything left empty uses the rule's default."""

    type_code = models.CharField(max_length=64, unique=True)
    is_enabled = models.BooleanField("enabled", default=True)
    sla_minutes = models.PositiveIntegerField(null=True, blank=True)
    thresholds = models.JSONField(blank=True, default=dict)
    updated_at = models.DateTimeField(auto_now=True)
    updated_by = models.ForeignKey(
        settings.AUTH_USER_MODEL, on_delete=models.SET_NULL, null=True, blank=True, related_name="+"
    )

    history = TrackedHistory(excluded_fields=["updated_at"])

    class Meta:
        ordering = ["type_code"]

    def __str__(self) -> str:
        return self.type_code
