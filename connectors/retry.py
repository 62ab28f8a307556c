"""Retry one failed step, by hand: a dead letter or a write-back that gave up.

Used by the dead-letter list and by the exception page's "retry" button, so both do
exactly the same thing. Only the failed row is touched: its status goes back to queued
(with room for more attempts) and its run is enqueued; rows that already succeeded are
never re-run, and the run itself still claims its row with a conditional update.

Each connector says how to run its rows in ``connectors.registry`` (INBOUND_PROCESSORS,
WRITEBACK_RUNNERS), so a new system plugs in without touching this module.
"""
from __future__ import annotations

from django.db import transaction
from django.db.models import F
from django.utils import timezone
from django.utils.module_loading import import_string

from returnsync.choices import InboundStatus, JobStatus
from returnsync.models import InboundEvent, InventoryAdjustment, WriteBack

# How many more attempts a manual retry grants a write-back that used all of its own.
EXTRA_ATTEMPTS = 3
RETRYABLE_WRITEBACK = (JobStatus.DEAD, JobStatus.RETRYING)


class NotRetryable(ValueError):
    """The row is not in a failed state (already succeeded, running, or unknown system)."""


def inbound_event_retry(*, event_id: int) -> InboundEvent:
    from connectors.registry import INBOUND_PROCESSORS

    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if event.status != InboundStatus.FAILED:
            raise NotRetryable(f"event {event_id} is {event.get_status_display().lower()}, not a dead letter")
        if event.source not in INBOUND_PROCESSORS:
            raise NotRetryable(f"no processor for {event.get_source_display()} events")
        event.status = InboundStatus.RECEIVED
        event.error = ""
        event.save(update_fields=["status", "error"])
        enqueue = import_string(INBOUND_PROCESSORS[event.source])
        transaction.on_commit(lambda: enqueue(event_id=event.pk))
    return event


def write_back_retry(*, write_back_id: int) -> WriteBack:
    from connectors.registry import WRITEBACK_RUNNERS

    with transaction.atomic():
        write_back = WriteBack.objects.select_for_update().select_related("connection").get(pk=write_back_id)
        if write_back.status not in RETRYABLE_WRITEBACK:
            raise NotRetryable(f"write-back {write_back_id} is {write_back.get_status_display().lower()}")
        if write_back.connection.kind not in WRITEBACK_RUNNERS:
            raise NotRetryable(f"no runner for {write_back.connection.get_kind_display()} write-backs")
        WriteBack.objects.filter(pk=write_back.pk).update(
            status=JobStatus.QUEUED, next_attempt_at=None, updated_at=timezone.now(),
            max_attempts=F("attempts") + EXTRA_ATTEMPTS,
        )
        InventoryAdjustment.objects.filter(write_back=write_back, status__in=RETRYABLE_WRITEBACK).update(
            status=JobStatus.QUEUED, updated_at=timezone.now())
        write_back.refresh_from_db()
        import_string(WRITEBACK_RUNNERS[write_back.connection.kind])(write_back=write_back)
    return write_back
