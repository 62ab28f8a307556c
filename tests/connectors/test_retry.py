"""Retrying a failed step by hand re-queues only that step."""
from __future__ import annotations

import pytest
from django_q.models import OrmQ

from returnsync.choices import InboundStatus, JobStatus
from returnsync.services import NotRetryable, inbound_event_retry, write_back_retry
from tests.factories import InboundEventFactory, InventoryAdjustmentFactory, WriteBackFactory

pytestmark = pytest.mark.django_db


def queued_task_names() -> list[str]:
    return [task.name() for task in OrmQ.objects.all()]


def test_dead_write_back_is_queued_again_with_fresh_attempts(django_capture_on_commit_callbacks):
    write_back = WriteBackFactory(status=JobStatus.DEAD, attempts=8, max_attempts=8, last_error="503")
    with django_capture_on_commit_callbacks(execute=True):
        write_back_retry(write_back_id=write_back.pk)
    write_back.refresh_from_db()
    assert write_back.status == JobStatus.QUEUED
    assert write_back.max_attempts == 11 and write_back.next_attempt_at is None
    assert queued_task_names() == [f"tiktok-writeback-{write_back.pk}"]


def test_dead_stock_update_requeues_its_adjustment_only():
    write_back = WriteBackFactory(status=JobStatus.DEAD, action="update_inventory", attempts=8, max_attempts=8)
    adjustment = InventoryAdjustmentFactory(status=JobStatus.DEAD, write_back=write_back)
    done = InventoryAdjustmentFactory(status=JobStatus.SUCCEEDED)
    write_back_retry(write_back_id=write_back.pk)
    adjustment.refresh_from_db()
    done.refresh_from_db()
    assert adjustment.status == JobStatus.QUEUED
    assert done.status == JobStatus.SUCCEEDED


@pytest.mark.parametrize("status", [JobStatus.SUCCEEDED, JobStatus.RUNNING, JobStatus.QUEUED])
def test_a_step_that_did_not_fail_is_not_rerun(status):
    write_back = WriteBackFactory(status=status)
    with pytest.raises(NotRetryable):
        write_back_retry(write_back_id=write_back.pk)
    write_back.refresh_from_db()
    assert write_back.status == status


def test_dead_letter_is_processed_again(django_capture_on_commit_callbacks):
    event = InboundEventFactory(status=InboundStatus.FAILED, error="KeyError: return_id", attempts=5)
    with django_capture_on_commit_callbacks(execute=True):
        inbound_event_retry(event_id=event.pk)
    event.refresh_from_db()
    assert event.status == InboundStatus.RECEIVED and event.error == ""
    assert queued_task_names() == [f"tiktok-inbound-{event.pk}"]


def test_processed_event_is_not_retried():
    event = InboundEventFactory(status=InboundStatus.PROCESSED)
    with pytest.raises(NotRetryable):
        inbound_event_retry(event_id=event.pk)


def test_retrying_a_write_back_that_is_still_retrying_keeps_its_attempts_left():
    write_back = WriteBackFactory(status=JobStatus.RETRYING, attempts=4, max_attempts=8)
    write_back_retry(write_back_id=write_back.pk)
    write_back.refresh_from_db()
    assert (write_back.status, write_back.attempts, write_back.max_attempts) == (JobStatus.QUEUED, 4, 8)
    assert write_back.next_attempt_at is None  # due now
