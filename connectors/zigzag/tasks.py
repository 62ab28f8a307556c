"""Background jobs of the ZigZag connector (django-q2): each fetches by id and calls a service."""
from __future__ import annotations

from django.db import transaction
from django.utils import timezone

from returnsync.choices import System
from returnsync.models import Connection, SyncRun

POLL_TASK = "connectors.zigzag.tasks.poll_connection"


def process_inbound_event(event_id: int) -> str:
    from connectors.zigzag.webhooks import inbound_event_process

    return inbound_event_process(event_id=event_id).status


def mirror_run_task(write_back_id: int) -> str:
    from connectors.zigzag.services import mirror_run

    return mirror_run(write_back_id=write_back_id).status


def poll_connection(connection_id: int, run_id: int | None = None) -> dict:
    from connectors.zigzag.sync import poll_returns

    run = SyncRun.objects.get(pk=run_id) if run_id else None
    return poll_returns(connection=Connection.objects.get(pk=connection_id), run=run).counts


def poll_due() -> int:
    """Queue a poll for every enabled ZigZag connection whose interval has passed."""
    from django_q.tasks import async_task

    now, queued = timezone.now(), 0
    for connection in Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True):
        last = SyncRun.objects.filter(connection=connection, job="zigzag_poll").order_by("-queued_at").first()
        if last and last.status in ("queued", "running") and (now - last.queued_at).total_seconds() < 3600:
            continue
        if last and (now - last.queued_at).total_seconds() < connection.poll_interval_seconds:
            continue
        with transaction.atomic():
            run = SyncRun.objects.create(connection=connection, job="zigzag_poll", stream="zigzag_returns")
            transaction.on_commit(lambda c=connection.pk, r=run.pk: async_task(
                POLL_TASK, c, r, task_name=f"zigzag-poll-{r}"))
        queued += 1
    return queued


def mirror_sweep() -> int:
    from connectors.zigzag.services import mirror_sweep as sweep

    with transaction.atomic():
        return sweep()


def writebacks_due() -> int:
    from connectors.zigzag.services import writebacks_enqueue_due

    with transaction.atomic():
        return writebacks_enqueue_due()


def inbound_events_requeue(*, older_than_seconds: int = 300, max_attempts: int = 5) -> int:
    from datetime import timedelta

    from django.db.models import Q

    from connectors.zigzag.webhooks import inbound_event_enqueue
    from returnsync.choices import InboundStatus
    from returnsync.models import InboundEvent

    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    ids = list(InboundEvent.objects.filter(
        Q(status=InboundStatus.RECEIVED) | Q(status=InboundStatus.FAILED, attempts__lt=max_attempts),
        source=System.ZIGZAG, received_at__lt=cutoff,
    ).exclude(event_type="malformed").values_list("id", flat=True)[:500])
    with transaction.atomic():
        for event_id in ids:
            inbound_event_enqueue(event_id=event_id)
    return len(ids)


def schedules_ensure() -> None:
    """Create (once) the ZigZag schedules: poll backstop, mirror sweep, retries."""
    from django_q.models import Schedule

    for name, func in (("zigzag: poll due connections", "connectors.zigzag.tasks.poll_due"),
                       ("zigzag: mirror sweep", "connectors.zigzag.tasks.mirror_sweep"),
                       ("zigzag: retry due write-backs", "connectors.zigzag.tasks.writebacks_due"),
                       ("zigzag: requeue stuck webhooks", "connectors.zigzag.tasks.inbound_events_requeue")):
        Schedule.objects.get_or_create(
            name=name, defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1})
