"""The one poll task, for every connector that polls (``Connector.poll``).

A poll reads what changed in ``[watermark - overlap, now)`` (the first one: the
connector's initial look-back, or ``options["initial_lookback_days"]``); the connector's
``PollSpec.run`` reads the pages and calls ``window.advance(newest)`` as each page is
committed, so a crash loses at most the page in flight and the next poll re-reads it. The
watermark never moves back. Every run is a ``SyncRun`` row (queued from the moment it is
enqueued, then running, then succeeded or failed with the error) and updates the
connection's health (``last_success_at`` / ``last_error_at``). A backfill reads a date
range without moving the live watermark.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from django.db import transaction
from django.utils import timezone

from returnsync import registry
from returnsync.choices import SyncRunStatus
from returnsync.models import Connection, SyncCursor, SyncRun

logger = logging.getLogger(__name__)

POLL_TASK = "connectors.tasks.poll_connection"
# A queued or running poll younger than this blocks the next one (an older one is a dead worker's).
STUCK_AFTER = timedelta(hours=1)


@dataclass
class PollWindow:
    """What one poll reads; ``advance`` moves the live watermark (not for a backfill)."""

    since: datetime | None  # None: from the beginning
    until: datetime
    cursor: SyncCursor | None = None

    def advance(self, watermark: datetime | None) -> None:
        """Move the watermark to ``watermark`` if newer; call it inside the transaction that
        commits the data read up to it."""
        if self.cursor is None or watermark is None:
            return
        locked = SyncCursor.objects.select_for_update().get(pk=self.cursor.pk)
        if locked.watermark is None or watermark > locked.watermark:
            locked.watermark = watermark
            locked.save(update_fields=["watermark", "updated_at"])
            self.cursor.watermark = watermark


def job_name(connection: Connection, what: str) -> str:
    return f"{registry.connector(connection.kind).slug}_{what}"


def sync_run_start(*, connection: Connection | None, job: str, stream: str = "",
                   run: SyncRun | None = None) -> SyncRun:
    """Mark a queued run as running (or create one already running)."""
    if run is None:
        run = SyncRun.objects.create(connection=connection, job=job, stream=stream)
    run.status = SyncRunStatus.RUNNING
    run.started_at = timezone.now()
    run.save(update_fields=["status", "started_at"])
    return run


def sync_run_finish(run: SyncRun, counts: dict, error: str = "") -> None:
    run.status = SyncRunStatus.FAILED if error else SyncRunStatus.SUCCEEDED
    run.finished_at = timezone.now()
    run.counts = counts
    run.error = error[:5000]
    run.save(update_fields=["status", "finished_at", "counts", "error"])


def connection_health_record(connection: Connection, *, error: str = "") -> None:
    now = timezone.now()
    fields = {"last_error_at": now, "last_error": error[:2000]} if error else {"last_success_at": now}
    Connection.objects.filter(pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)


def _read(connection: Connection, *, window: PollWindow, job: str, run: SyncRun | None, client,
          record_health: bool, note: str = "") -> SyncRun:
    connector = registry.connector(connection.kind)
    spec = connector.poll
    run = sync_run_start(connection=connection, job=job, stream=spec.stream, run=run)
    counts = {"since": window.since.isoformat() if window.since else None, "until": window.until.isoformat()}
    if note:
        counts["note"] = note
    if client is None and connector.client is not None:
        client = connector.client(connection)
    try:
        counts.update(spec.run(connection=connection, window=window, client=client))
    except Exception as exc:  # recorded on the run and the connection, then re-raised for the job runner
        logger.exception("%s of connection %s failed", job, connection.pk)
        message = f"{type(exc).__name__}: {exc}"
        sync_run_finish(run, counts, error=message)
        if record_health:
            connection_health_record(connection, error=message)
        raise
    sync_run_finish(run, counts)
    if record_health:
        connection_health_record(connection)
    return run


def poll_run(*, connection: Connection, run: SyncRun | None = None, client=None,
             now: datetime | None = None) -> SyncRun:
    """One poll: everything changed since the watermark (minus the overlap) until ``now``."""
    spec = registry.connector(connection.kind).poll
    if spec is None:
        raise ValueError(f"{connection.get_kind_display()} connections are not polled")
    now = now or timezone.now()
    cursor, _ = SyncCursor.objects.get_or_create(connection=connection, stream=spec.stream)
    note = ""
    if cursor.watermark is not None:
        since = cursor.watermark - spec.overlap
    else:
        lookback, source = initial_lookback(connection, spec)
        since = now - lookback if lookback is not None else None
        note = (f"First poll: read back {lookback.days} days, since {since:%Y-%m-%d %H:%M} UTC ({source})"
                if lookback is not None else f"First poll: read everything the source has ({source})")
    return _read(connection, window=PollWindow(since=since, until=now, cursor=cursor), job=job_name(connection, "poll"),
                 run=run, client=client, record_health=True, note=note)


MAX_LOOKBACK_DAYS = 3650


def initial_lookback(connection: Connection, spec: registry.PollSpec) -> tuple[timedelta | None, str]:
    """How far back a connection's first poll reads, and where that comes from:
    ``options["initial_lookback_days"]`` (0 to 3650 days; empty means everything), else the
    connector's default. A value that is not a whole number falls back to the default."""
    options = connection.options or {}
    default = spec.initial_lookback
    default_text = f"the {registry.connector(connection.kind).label} default"
    if "initial_lookback_days" not in options:
        return default, default_text
    days = options["initial_lookback_days"]
    if days in (None, ""):
        return None, "option initial_lookback_days is empty"
    try:
        number = int(str(days).strip())
    except (TypeError, ValueError):
        return default, f"option initial_lookback_days={days!r} is not a whole number: {default_text}"
    number = min(max(number, 0), MAX_LOOKBACK_DAYS)
    return timedelta(days=number), f"option initial_lookback_days={number}"


def backfill_run(*, connection: Connection, since: datetime, until: datetime, run: SyncRun | None = None,
                 client=None) -> SyncRun:
    """Re-read a date range. Never moves the live watermark; safe to repeat (stale rows are skipped)."""
    if registry.connector(connection.kind).poll is None:
        raise ValueError(f"{connection.get_kind_display()} connections are not polled")
    since = since if since.tzinfo else since.replace(tzinfo=UTC)
    until = until if until.tzinfo else until.replace(tzinfo=UTC)
    return _read(connection, window=PollWindow(since=since, until=until), job=job_name(connection, "backfill"),
                 run=run, client=client, record_health=False)


def poll_enqueue(*, connection: Connection) -> SyncRun:
    """Queue a poll; the run shows as ``queued`` from this moment on."""
    from django_q.tasks import async_task

    spec = registry.connector(connection.kind).poll
    run = SyncRun.objects.create(connection=connection, job=job_name(connection, "poll"), stream=spec.stream)
    slug = registry.connector(connection.kind).slug
    def send() -> None:
        with transaction.atomic():  # see connectors.webhooks.inbound_event_enqueue
            async_task(POLL_TASK, connection.pk, run.pk, task_name=f"{slug}-poll-{run.pk}")

    transaction.on_commit(send)
    return run


def poll_due(*, now: datetime | None = None) -> int:
    """Queue a poll for every enabled connection that polls, whose interval has passed and
    that has no poll queued or running (schedule this every minute)."""
    now = now or timezone.now()
    kinds = [c.kind for c in registry.connectors() if c.poll is not None]
    queued = 0
    for connection in Connection.objects.filter(kind__in=kinds, is_enabled=True):
        last = (SyncRun.objects.filter(connection=connection, job=job_name(connection, "poll"))
                .order_by("-queued_at").first())
        if last and last.status in (SyncRunStatus.QUEUED, SyncRunStatus.RUNNING) and now - last.queued_at < STUCK_AFTER:
            continue
        if last and (now - last.queued_at).total_seconds() < connection.poll_interval_seconds:
            continue
        with transaction.atomic():
            poll_enqueue(connection=connection)
        queued += 1
    return queued
