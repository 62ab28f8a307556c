"""Sync bookkeeping: what came in, what went out, how far each stream has read."""
from __future__ import annotations

from django.db import models

from returnsync.choices import InboundStatus, JobStatus, SyncRunStatus, System, WriteBackAction
from returnsync.models.base import TimeStamped


class InboundEvent(models.Model):
    """A payload as it arrived (webhook, poll page, CSV row), kept raw and replayable.

    ``dedupe_key`` is the provider's own event id where it has one (TikTok's
    ``tts_notification_id``) so a re-delivery is recognised and not applied twice.
    A failed event is a dead letter an admin can see and retry.
    """

    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.SET_NULL, null=True, blank=True, related_name="inbound_events"
    )
    source = models.CharField(max_length=20, choices=System.choices)
    event_type = models.CharField(max_length=64, blank=True, default="")
    dedupe_key = models.CharField(max_length=200)
    headers = models.JSONField(blank=True, default=dict)
    body = models.BinaryField()
    subject_ref = models.CharField(
        max_length=64, blank=True, default="", help_text="Return or order id the event is about, for lookup."
    )
    status = models.CharField(max_length=20, choices=InboundStatus.choices, default=InboundStatus.RECEIVED)
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    processed_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-received_at", "-id"]
        constraints = [
            models.UniqueConstraint(fields=["source", "dedupe_key"], name="inboundevent_unique_dedupe_key"),
        ]
        indexes = [
            models.Index(fields=["status", "received_at"], name="inbound_status_received_idx"),
            models.Index(fields=["subject_ref"], name="inbound_subject_idx"),
            models.Index(fields=["-received_at", "-id"], name="inbound_default_ordering_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_source_display()} {self.event_type or 'event'} {self.dedupe_key}"

    @property
    def body_text(self) -> str:
        return bytes(self.body).decode("utf-8", errors="replace")


class ApiCall(models.Model):
    """One outbound HTTP call. Never holds secrets: no tokens, no signatures, no bodies."""

    connection = models.ForeignKey("returnsync.Connection", on_delete=models.CASCADE, related_name="api_calls")
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=500)
    http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    api_code = models.CharField(max_length=32, blank=True, default="")
    duration_ms = models.PositiveIntegerField(default=0)
    attempt = models.PositiveSmallIntegerField(default=1)
    request_id = models.CharField(max_length=100, blank=True, default="")
    error = models.TextField(blank=True, default="")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["connection", "-created_at"], name="apicall_connection_recent_idx")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} → {self.http_status or 'no answer'}"

    @property
    def ok(self) -> bool:
        return self.http_status is not None and 200 <= self.http_status < 300 and self.api_code in ("", "0")


class SyncCursor(models.Model):
    """How far one stream of one connection has been read (a watermark and/or a cursor)."""

    connection = models.ForeignKey("returnsync.Connection", on_delete=models.CASCADE, related_name="cursors")
    stream = models.CharField(max_length=64)
    watermark = models.DateTimeField(null=True, blank=True)
    cursor = models.TextField(blank=True, default="")
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["connection", "stream"]
        constraints = [models.UniqueConstraint(fields=["connection", "stream"], name="synccursor_unique_stream")]

    def __str__(self) -> str:
        return f"{self.connection} / {self.stream} @ {self.watermark}"


class SyncRun(models.Model):
    """One run of a job (a poll, a backfill, a detection pass), visible from enqueue on."""

    connection = models.ForeignKey(
        "returnsync.Connection", on_delete=models.SET_NULL, null=True, blank=True, related_name="sync_runs"
    )
    job = models.CharField(max_length=64)
    stream = models.CharField(max_length=64, blank=True, default="")
    status = models.CharField(max_length=20, choices=SyncRunStatus.choices, default=SyncRunStatus.QUEUED)
    queued_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    counts = models.JSONField(blank=True, default=dict)
    error = models.TextField(blank=True, default="")

    class Meta:
        ordering = ["-queued_at", "-id"]
        indexes = [
            models.Index(fields=["-queued_at", "-id"], name="syncrun_default_ordering_idx"),
            models.Index(fields=["connection", "job", "-queued_at"], name="syncrun_connection_job_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.job} {self.stream} ({self.status})"

    @property
    def duration_seconds(self) -> float | None:
        if self.started_at and self.finished_at:
            return (self.finished_at - self.started_at).total_seconds()
        return None


class WriteBack(TimeStamped):
    """A queued outbound action (approve a received package, update stock, mirror a return).

    ``idempotency_key`` is deterministic from the action and its subject, so queuing
    the same decision twice yields one row, and the remote call carries the same key.
    """

    connection = models.ForeignKey("returnsync.Connection", on_delete=models.PROTECT, related_name="write_backs")
    action = models.CharField(max_length=64, choices=WriteBackAction.choices)
    marketplace_return = models.ForeignKey(
        "returnsync.MarketplaceReturn", on_delete=models.SET_NULL, null=True, blank=True, related_name="write_backs"
    )
    portal_return = models.ForeignKey(
        "returnsync.PortalReturn", on_delete=models.SET_NULL, null=True, blank=True, related_name="write_backs"
    )
    payload = models.JSONField(blank=True, default=dict)
    idempotency_key = models.CharField(max_length=200, unique=True)
    status = models.CharField(max_length=20, choices=JobStatus.choices, default=JobStatus.QUEUED)
    attempts = models.PositiveIntegerField(default=0)
    max_attempts = models.PositiveIntegerField(default=8)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    last_error = models.TextField(blank=True, default="")
    last_http_status = models.PositiveSmallIntegerField(null=True, blank=True)
    last_api_code = models.CharField(max_length=32, blank=True, default="")
    succeeded_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        constraints = [
            models.CheckConstraint(
                condition=models.Q(attempts__lte=models.F("max_attempts")), name="writeback_attempts_lte_max"
            ),
        ]
        indexes = [
            models.Index(fields=["status", "next_attempt_at"], name="writeback_due_idx"),
            models.Index(fields=["-created_at", "-id"], name="writeback_default_ordering_idx"),
        ]

    def __str__(self) -> str:
        return f"{self.get_action_display()} [{self.status}]"
