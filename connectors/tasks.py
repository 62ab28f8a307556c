"""Background jobs every connector shares (django-q2).

Each task fetches by id and calls a service; the services enqueue them with
``transaction.on_commit``. Every task is safe to run twice: the services claim their row
with a conditional update, and stale data is ignored when applied.
"""
from __future__ import annotations

from django.db import transaction

from returnsync.models import Connection, SyncRun


def process_inbound_event(event_id: int) -> str:
    """Process one stored webhook (re-fetch and apply what it announces)."""
    from connectors.webhooks import inbound_event_process

    return inbound_event_process(event_id=event_id).status


def poll_connection(connection_id: int, run_id: int | None = None) -> dict:
    """Poll one connection (its SyncRun row records it)."""
    from connectors.polling import poll_run

    run = SyncRun.objects.get(pk=run_id) if run_id else None
    return poll_run(connection=Connection.objects.get(pk=connection_id), run=run).counts


def write_back_run_task(write_back_id: int) -> str:
    from connectors.jobs import write_back_run

    return write_back_run(write_back_id=write_back_id).status


def poll_due() -> int:
    """Queue the polls that are due (every minute)."""
    from connectors.polling import poll_due as due

    return due()


# The sweeps below are backstops for work whose task was lost (a worker killed mid-task, an
# enqueue that failed). While the queue holds a backlog that work is most likely still in
# it: a sweep then adds nothing, or every minute would queue the whole backlog once more.
BACKLOG = 200


def _backlogged() -> bool:
    from django_q.brokers import get_broker

    try:
        return get_broker().queue_size() > BACKLOG
    except Exception:  # noqa: BLE001 — a broker that cannot say: sweep as usual
        return False


def writebacks_due() -> int:
    """Re-enqueue write-backs whose retry time has come (every minute)."""
    from connectors.jobs import writebacks_enqueue_due

    if _backlogged():
        return 0
    with transaction.atomic():
        return writebacks_enqueue_due()


def inbound_events_requeue() -> int:
    """Re-enqueue stored webhooks that never got processed, and dead letters with attempts left."""
    from connectors.webhooks import inbound_events_requeue as requeue

    if _backlogged():
        return 0
    return requeue()


SCHEDULES = (
    ("connectors: poll due connections", "connectors.tasks.poll_due"),
    ("connectors: retry due write-backs", "connectors.tasks.writebacks_due"),
    ("connectors: requeue stuck webhooks", "connectors.tasks.inbound_events_requeue"),
)


def schedules_ensure() -> None:
    """Create (once) the schedules that keep every connection in sync: a poll check, a
    write-back retry sweep and a stuck-webhook sweep, every minute."""
    from django_q.models import Schedule

    for name, func in SCHEDULES:
        Schedule.objects.get_or_create(
            name=name, defaults={"func": func, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1})
