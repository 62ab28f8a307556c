"""Background jobs of the exception engine (django-q2).

- ``detect_full``: the scheduled pass over everything (every 5 minutes). It never
  overlaps itself: it holds a lease, a ``SyncRun`` row (job ``detect_full``, status
  running) taken under a lock (PostgreSQL advisory lock; SQLite's write transaction is
  already exclusive). A worker that dies leaves the row behind; after ``LEASE`` it no
  longer counts and the next pass takes over.
- ``detect_changed``: the ``RETURN_CHANGE_LISTENERS`` hook, called after a sync commits;
  it only enqueues ``detect_incremental`` for the changed orders.
- ``detect_incremental``: the pass over those orders.

Each pass writes a ``SyncRun`` row with the counts.
"""
from __future__ import annotations

import logging
from datetime import timedelta

from django.db import connection, transaction
from django.utils import timezone

from exceptions_app.detection import counts_errors, counts_total, detection_run
from exceptions_app.rules.base import Scope
from returnsync.choices import SyncRunStatus
from returnsync.models import SyncRun

logger = logging.getLogger(__name__)

FULL_JOB = "detect_full"
INCREMENTAL_JOB = "detect_incremental"
INCREMENTAL_TASK = "exceptions_app.tasks.detect_incremental"
FULL_TASK = "exceptions_app.tasks.detect_full"
# Longer than any pass takes (django-q kills a task after Q_CLUSTER["timeout"]): a running
# row older than this belongs to a dead worker.
LEASE = timedelta(minutes=10)
ADVISORY_LOCK_KEY = 0x5245_5453  # "RETS": any constant shared by every process
MAX_REFS_PER_TASK = 2000


def _lease_take(*, now) -> SyncRun | None:
    """The running ``detect_full`` row for this pass, or None when another pass holds the lease."""
    with transaction.atomic():
        if connection.vendor == "postgresql":
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_xact_lock(%s)", [ADVISORY_LOCK_KEY])
        running = SyncRun.objects.filter(job=FULL_JOB, status=SyncRunStatus.RUNNING)
        running.filter(started_at__lt=now - LEASE).update(
            status=SyncRunStatus.FAILED, finished_at=now, error="Lease expired: the worker running it stopped.")
        if running.exists():
            return None
        return SyncRun.objects.create(job=FULL_JOB, stream="exceptions", status=SyncRunStatus.RUNNING, started_at=now)


def _run(*, run: SyncRun, scope: Scope) -> dict:
    try:
        counts = detection_run(scope=scope)
    except Exception as error:
        SyncRun.objects.filter(pk=run.pk).update(
            status=SyncRunStatus.FAILED, finished_at=timezone.now(), error=f"{type(error).__name__}: {error}"[:2000])
        raise
    summary = {**counts_total(counts), "types": counts}
    if not scope.is_full:
        summary["orders"] = len(scope.order_refs)
    errors = counts_errors(counts)
    error = "; ".join(f"{code}: {message}" for code, message in errors.items())
    SyncRun.objects.filter(pk=run.pk).update(
        status=SyncRunStatus.FAILED if errors else SyncRunStatus.SUCCEEDED, finished_at=timezone.now(),
        counts=summary, error=error[:2000])
    return summary


def detect_full() -> dict:
    """The full pass (scheduled). Returns its counts, or ``{"skipped": ...}`` when one is already running."""
    run = _lease_take(now=timezone.now())
    if run is None:
        logger.info("detect_full skipped: another full pass is running")
        return {"skipped": "another full detection pass is running"}
    return _run(run=run, scope=Scope())


def detect_incremental(order_refs) -> dict:
    """The pass over the given TikTok orders (a list of str; queued by ``detect_changed``)."""
    refs = frozenset(str(ref) for ref in order_refs if ref)
    if not refs:
        return {}
    run = SyncRun.objects.create(job=INCREMENTAL_JOB, stream="exceptions", status=SyncRunStatus.RUNNING,
                                 started_at=timezone.now())
    return _run(run=run, scope=Scope(order_refs=refs))


def detect_changed(*, order_refs) -> int:
    """``RETURN_CHANGE_LISTENERS`` hook: queue an incremental pass over these orders (one task
    per call, however many orders; very large sets are split). Returns the tasks queued."""
    from django_q.tasks import async_task

    refs = sorted({str(ref) for ref in order_refs if ref})
    queued = 0
    # Inside atomic(): outside one, django-q's ORM broker calls close_old_connections(),
    # which with CONN_MAX_AGE=0 (SQLite) closes the caller's connection (a WAL checkpoint)
    # and the next query opens a new one: that was ~10 ms of every polled page (issue 12).
    with transaction.atomic():
        for start in range(0, len(refs), MAX_REFS_PER_TASK):
            chunk = refs[start:start + MAX_REFS_PER_TASK]
            async_task(INCREMENTAL_TASK, chunk, task_name=f"detect-{chunk[0]}-{len(chunk)}")
            queued += 1
    return queued


def schedules_ensure() -> None:
    """Create (once) the django-q schedule of the full detection pass, every 5 minutes."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name="exceptions: full detection pass",
        defaults={"func": FULL_TASK, "schedule_type": Schedule.MINUTES, "minutes": 5, "repeats": -1},
    )


def refund_tolerance() -> tuple[str, str]:
    """The refund-mismatch tolerance an admin set (exception settings): the refund gate
    judges with the same numbers as the rule (``returnsync.registry.money_tolerance``)."""
    from exceptions_app.rules import rule_for

    rule = rule_for("refund_mismatch")
    return str(rule.threshold("tolerance_amount")), str(rule.threshold("tolerance_percent"))
