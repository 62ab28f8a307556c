"""Running queued outbound jobs (write-backs, stock adjustments) exactly once, whatever the
connector: claim a row with a conditional update, record a failure with its backoff, and
enqueue a run after commit. Each connector's services build on these.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import IntegrityError, transaction
from django.db.models import F, Q

from returnsync.choices import JobStatus
from returnsync.models import WriteBack

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# A job left ``running`` longer than this (its worker died) may be claimed again.
RUNNING_LEASE = timedelta(minutes=10)


def job_enqueue(func: str, object_id: int, name: str) -> None:
    """Queue ``func(object_id)`` on django-q once the current transaction commits."""
    def send() -> None:
        from django_q.tasks import async_task

        try:
            with transaction.atomic():  # see connectors.tiktok_shop.webhooks.inbound_event_enqueue
                async_task(func, object_id, task_name=name)
        except Exception:  # the row stays queued: the connector's due sweep picks it up
            logger.exception("could not enqueue %s(%s)", func, object_id)

    transaction.on_commit(send)


def write_back_create_once(*, idempotency_key: str, **fields) -> tuple[WriteBack, bool]:
    """The write-back for ``idempotency_key``: the stored one, or a new one made from
    ``fields``. Returns (row, created); of two concurrent callers exactly one creates it.
    Call inside a transaction that also enqueues the run when ``created``."""
    existing = WriteBack.objects.filter(idempotency_key=idempotency_key).first()
    if existing is not None:
        return existing, False
    try:
        with transaction.atomic():
            return WriteBack.objects.create(idempotency_key=idempotency_key, **fields), True
    except IntegrityError:  # a concurrent caller created it first
        return WriteBack.objects.get(idempotency_key=idempotency_key), False


def backoff(attempts: int) -> timedelta:
    return timedelta(seconds=min(BACKOFF_BASE_SECONDS * 2 ** max(attempts - 1, 0), BACKOFF_MAX_SECONDS))


def job_claim(model, pk: int, now) -> bool:
    """queued/retrying (due) or an expired ``running`` lease → running, for one caller only."""
    prefix = "" if model is WriteBack else "write_back__"
    due = Q(**{f"{prefix}next_attempt_at__isnull": True}) | Q(**{f"{prefix}next_attempt_at__lte": now})
    claimable = (Q(status__in=[JobStatus.QUEUED, JobStatus.RETRYING]) & due) | Q(
        status=JobStatus.RUNNING, updated_at__lt=now - RUNNING_LEASE
    )
    fields = {"status": JobStatus.RUNNING, "updated_at": now}
    if model is WriteBack:
        fields["attempts"] = F("attempts") + 1
        claimable &= Q(attempts__lt=F("max_attempts"))
    return model.objects.filter(claimable, pk=pk).update(**fields) == 1


def job_fail(write_back: WriteBack, exc: Exception, now) -> None:
    """Record a failed attempt: ``retrying`` with an exponential ``next_attempt_at`` while
    attempts remain and the error may pass (``exc.retryable``), else ``dead``."""
    retryable = getattr(exc, "retryable", True)  # network errors after the client's retries: retry later
    write_back.last_error = f"{type(exc).__name__}: {exc}"[:5000]
    write_back.last_http_status = getattr(exc, "http_status", None)
    code = getattr(exc, "code", None)
    write_back.last_api_code = "" if code is None else str(code)
    if retryable and write_back.attempts < write_back.max_attempts:
        write_back.status = JobStatus.RETRYING
        write_back.next_attempt_at = now + backoff(write_back.attempts)
    else:
        write_back.status = JobStatus.DEAD
        write_back.next_attempt_at = None
