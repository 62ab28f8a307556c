"""Background jobs of the TikTok Shop connector (django-q2).

Each task fetches by id and calls a service; enqueue them with ``transaction.on_commit``
(the services do). Every task is safe to run twice: the services claim their row with
a conditional update, and stale data is ignored when applied.
"""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from returnsync.choices import System
from returnsync.models import Connection, SyncRun

POLL_TASK = "connectors.tiktok_shop.tasks.poll_connection"


def process_inbound_event(event_id: int) -> str:
    """Process one stored webhook (re-fetch and apply what it announces)."""
    from connectors.tiktok_shop.webhooks import inbound_event_process

    return inbound_event_process(event_id=event_id).status


def poll_connection(connection_id: int, run_id: int | None = None) -> dict:
    """Poll one connection's returns (a SyncRun row records it)."""
    from connectors.tiktok_shop.sync import poll_returns

    connection = Connection.objects.get(pk=connection_id)
    run = SyncRun.objects.get(pk=run_id) if run_id else None
    return poll_returns(connection=connection, run=run).counts


def poll_enqueue(*, connection: Connection) -> SyncRun:
    """Queue a poll; the run shows as ``queued`` from this moment on."""
    from django_q.tasks import async_task

    run = SyncRun.objects.create(connection=connection, job="tiktok_poll", stream="tiktok_returns")
    transaction.on_commit(lambda: async_task(POLL_TASK, connection.pk, run.pk, task_name=f"tiktok-poll-{run.pk}"))
    return run


def poll_due() -> int:
    """Queue a poll for every enabled TikTok connection whose interval has passed and that
    has no poll queued or running (schedule this every minute)."""
    now = timezone.now()
    queued = 0
    for connection in Connection.objects.filter(kind=System.TIKTOK_SHOP, is_enabled=True):
        last = SyncRun.objects.filter(connection=connection, job="tiktok_poll").order_by("-queued_at").first()
        if last and last.status in ("queued", "running") and (now - last.queued_at).total_seconds() < 3600:
            continue
        if last and (now - last.queued_at).total_seconds() < connection.poll_interval_seconds:
            continue
        with transaction.atomic():
            poll_enqueue(connection=connection)
        queued += 1
    return queued


def writeback_run_task(write_back_id: int) -> str:
    from connectors.tiktok_shop.services import writeback_run

    return writeback_run(write_back_id=write_back_id).status


def inventory_adjustment_task(adjustment_id: int) -> str:
    from connectors.tiktok_shop.services import inventory_adjustment_apply

    return inventory_adjustment_apply(adjustment_id=adjustment_id).status


def writebacks_due() -> int:
    """Re-enqueue write-backs whose retry time has come (schedule this every minute)."""
    from connectors.tiktok_shop.services import writebacks_enqueue_due

    with transaction.atomic():
        return writebacks_enqueue_due()


def inbound_events_requeue(*, older_than_seconds: int = 300, max_attempts: int = 5) -> int:
    """Re-enqueue stored webhooks that never got processed (the enqueue failed, or a worker
    died) and dead letters with attempts left (schedule this every few minutes)."""
    from datetime import timedelta

    from django.db.models import Q

    from connectors.tiktok_shop.webhooks import inbound_event_enqueue
    from returnsync.choices import InboundStatus
    from returnsync.models import InboundEvent

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(InboundEvent.objects.filter(
        Q(status=InboundStatus.RECEIVED) | Q(status=InboundStatus.FAILED, attempts__lt=max_attempts),
        source=System.TIKTOK_SHOP, received_at__lt=cutoff,
    ).exclude(event_type="malformed").values_list("id", flat=True)[:500])
    for event_id in ids:
        inbound_event_enqueue(event_id=event_id)
    return len(ids)


def schedules_ensure() -> None:
    """Create (once) the django-q schedules that keep TikTok in sync: a poll check and a
    write-back retry sweep every minute. Idempotent; call it from setup (e.g. seeding)."""
    from django_q.models import Schedule

    for name, func in (("tiktok: poll due connections", "connectors.tiktok_shop.tasks.poll_due"),
                       ("tiktok: retry due write-backs", "connectors.tiktok_shop.tasks.writebacks_due"),
                       ("tiktok: requeue stuck webhooks", "connectors.tiktok_shop.tasks.inbound_events_requeue")):
        Schedule.objects.get_or_create(
            name=name, defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
        )
