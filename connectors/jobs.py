"""Running queued outbound jobs (write-backs, stock adjustments) exactly once, whatever the
connector.

- ``write_back_create_once``: the row for an idempotency key, created by one caller only;
- ``job_claim``: a conditional UPDATE moves a due row to ``running`` (two workers can never
  both run it; a ``running`` row whose worker died is claimable again after ``RUNNING_LEASE``);
- ``job_fail``: a failed attempt becomes ``retrying`` with an exponential
  ``next_attempt_at`` while attempts remain and the error may pass, else ``dead``;
- ``write_back_run``: the one runner. It claims the row, calls the connector's
  ``ActionRunner.run`` for the action, records success or failure with its backoff and
  appends one timeline line per outcome;
- ``write_back_enqueue`` / ``writebacks_enqueue_due``: a run after commit; the periodic
  sweep of what is due (new rows, retry time come, expired leases).
"""
from __future__ import annotations

import contextlib
import hashlib
import logging
from datetime import timedelta
from pathlib import Path

from django.conf import settings
from django.db import IntegrityError, transaction
from django.db import connection as db_connection
from django.db.models import F, Q
from django.utils import timezone

from returnsync import registry
from returnsync.choices import JobStatus, TimelineKind
from returnsync.models import WriteBack
from returnsync.timeline import timeline_record

logger = logging.getLogger(__name__)

BACKOFF_BASE_SECONDS = 30
BACKOFF_MAX_SECONDS = 3600
# A job left ``running`` longer than this (its worker died) may be claimed again; longer
# than django-q's job timeout, so a live job is never run twice (``JOB_LEASE_SECONDS``).
RUNNING_LEASE = timedelta(seconds=max(int(getattr(settings, "JOB_LEASE_SECONDS", 600)),
                                      int(settings.Q_CLUSTER.get("timeout", 60)) + 30))
RUN_TASK = "connectors.tasks.write_back_run_task"
DUE_BATCH = 500


@contextlib.contextmanager
def exclusive(key: str):
    """Hold a lock named ``key`` across processes and hosts while the block runs (e.g. one
    SKU's stock: read, then write an absolute quantity). PostgreSQL: a session advisory lock
    (released at the end, or by the server if the worker dies with its connection); SQLite,
    one host: an ``flock`` on a file under ``var/locks/``. Never inside a transaction that must
    commit before the block ends: the lock does not need one."""
    digest = int.from_bytes(hashlib.sha256(key.encode()).digest()[:8], "big", signed=True)
    if db_connection.vendor == "postgresql":
        with db_connection.cursor() as cursor:
            cursor.execute("SELECT pg_advisory_lock(%s)", [digest])
        try:
            yield
        finally:
            with db_connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [digest])
        return
    import fcntl

    folder = Path(settings.VAR_DIR) / "locks"
    folder.mkdir(parents=True, exist_ok=True)
    with open(folder / f"{abs(digest) % 1024:04d}.lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


class NoRunner(Exception):
    """The connector has no runner for this action (a person must look)."""

    retryable = False


def job_enqueue(func: str, object_id: int, name: str) -> None:
    """Queue ``func(object_id)`` on django-q once the current transaction commits."""
    def send() -> None:
        from django_q.tasks import async_task

        try:
            with transaction.atomic():  # see connectors.webhooks.inbound_event_enqueue
                async_task(func, object_id, task_name=name)
        except Exception:  # the row stays queued: the due sweep picks it up
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


def due_q(now, prefix: str = "") -> Q:
    """Rows whose run is due: queued or retrying with their time come, or a dead worker's lease."""
    due = Q(**{f"{prefix}next_attempt_at__isnull": True}) | Q(**{f"{prefix}next_attempt_at__lte": now})
    return (Q(status__in=[JobStatus.QUEUED, JobStatus.RETRYING]) & due) | Q(
        status=JobStatus.RUNNING, updated_at__lt=now - RUNNING_LEASE)


def job_claim(model, pk: int, now) -> bool:
    """queued/retrying (due) or an expired ``running`` lease → running, for one caller only."""
    prefix = "" if model is WriteBack else "write_back__"
    fields = {"status": JobStatus.RUNNING, "updated_at": now}
    claimable = due_q(now, prefix)
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


def _runner(write_back: WriteBack) -> registry.ActionRunner | None:
    found = registry.connector_or_none(write_back.connection.kind)
    return found.write_back_runners.get(write_back.action) if found else None


def write_back_enqueue(*, write_back: WriteBack) -> None:
    """Queue one run of a write-back (after commit): the shared runner, or the action's own job."""
    runner = _runner(write_back)
    if runner is not None and runner.enqueue is not None:
        runner.enqueue(write_back=write_back)
        return
    slug = registry.connector(write_back.connection.kind).slug
    job_enqueue(RUN_TASK, write_back.pk, f"{slug}-writeback-{write_back.pk}")


def _record_outcome(write_back: WriteBack, summary: str) -> None:
    subject = ({"marketplace_return": write_back.marketplace_return} if write_back.marketplace_return_id
               else {"portal_return": write_back.portal_return} if write_back.portal_return_id else None)
    if subject is None:
        return
    timeline_record(
        system=write_back.connection.kind, kind=TimelineKind.WRITE_BACK, summary=summary, **subject,
        data={"write_back": write_back.pk, "status": write_back.status, "attempt": write_back.attempts,
              "api_code": write_back.last_api_code, "error": write_back.last_error[:300]},
        dedupe_key=f"writeback:{write_back.pk}:{write_back.attempts}:{write_back.status}",
    )


def write_back_run(*, write_back_id: int, client=None) -> WriteBack:
    """Run one write-back through its connector, exactly once however often it is called."""
    write_back = WriteBack.objects.select_related("connection").get(pk=write_back_id)
    runner = _runner(write_back)
    if runner is not None and runner.run is None and runner.enqueue is not None:
        runner.enqueue(write_back=write_back)  # an action with its own job (it claims its own row)
        return write_back
    if not job_claim(WriteBack, write_back_id, timezone.now()):
        return WriteBack.objects.get(pk=write_back_id)
    write_back = WriteBack.objects.select_related("connection", "marketplace_return", "portal_return").get(
        pk=write_back_id)
    try:
        if runner is None or runner.run is None:
            raise NoRunner(f"no runner for {write_back.get_action_display()} on "
                           f"{write_back.connection.get_kind_display()}")
        connector = registry.connector(write_back.connection.kind)
        if client is None and connector.client is not None:
            client = connector.client(write_back.connection)
        result = runner.run(write_back=write_back, client=client)
    except Exception as exc:  # noqa: BLE001 — every failure is recorded on the write-back
        job_fail(write_back, exc, timezone.now())
        failed = runner.failed(write_back) if runner else write_back.get_action_display()
        summary = f"{failed}: {write_back.last_error[:200]}"
        if write_back.status == JobStatus.RETRYING:
            summary += (f" — retry {write_back.attempts + 1}/{write_back.max_attempts} at "
                        f"{write_back.next_attempt_at:%H:%M:%S}")
        else:
            summary += f" — {runner.gave_up if runner else 'gave up'}"
    else:
        write_back.status = JobStatus.SUCCEEDED
        write_back.succeeded_at = timezone.now()
        write_back.last_error = ""
        write_back.last_http_status = None
        write_back.last_api_code = result.api_code
        write_back.portal_return = result.portal_return or write_back.portal_return
        summary = result.summary
    write_back.save(update_fields=["status", "succeeded_at", "next_attempt_at", "last_error", "last_http_status",
                                   "last_api_code", "portal_return", "updated_at"])
    _record_outcome(write_back, summary)
    return write_back


def writebacks_enqueue_due(*, now=None) -> int:
    """Enqueue every write-back whose run is due, and each connector's own due jobs. Safe to
    run often: the run itself claims atomically."""
    now = now or timezone.now()
    count = 0
    for connector in registry.connectors():
        shared = [action for action, runner in connector.write_back_runners.items() if runner.run is not None]
        if shared:
            ids = list(WriteBack.objects.filter(due_q(now), connection__kind=connector.kind, action__in=shared)
                       .values_list("id", flat=True)[:DUE_BATCH])
            for pk in ids:
                job_enqueue(RUN_TASK, pk, f"{connector.slug}-writeback-{pk}")
            count += len(ids)
        if connector.jobs_due is not None:
            count += connector.jobs_due(now=now)
    return count
