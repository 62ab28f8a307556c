"""``/healthz``: is this deployment able to do its work? For load balancers and uptime checks.

No login and no business data: each part says ok or what is wrong, and the answer is 200
when all pass, 503 naming the failing parts otherwise:

- ``database``: a round trip to the default database;
- ``broker``: the django-q2 broker answers (Redis ``PING``, or the ORM broker's table);
- ``worker``: a background worker ran the heartbeat task recently (scheduled every minute,
  so it also proves the scheduler queues work and a cluster takes it);
- ``schedule``: no django-q2 schedule is overdue by more than the allowed lag (a stopped
  scheduler, or clusters too busy to keep up).
"""
from __future__ import annotations

import os
import socket
import time
from datetime import timedelta

from django.conf import settings
from django.db import connection
from django.utils import timezone

HEARTBEAT_JOB = "worker_heartbeat"
HEARTBEAT_TASK = "returnsync.health.worker_heartbeat"


def worker_heartbeat() -> str:
    """Scheduled every minute: record that a worker is running tasks (one row, updated)."""
    from returnsync.choices import SyncRunStatus
    from returnsync.models import SyncRun

    now = timezone.now()
    counts = {"host": socket.gethostname(), "pid": os.getpid()}
    updated = SyncRun.objects.filter(job=HEARTBEAT_JOB).update(finished_at=now, started_at=now, counts=counts)
    if not updated:
        SyncRun.objects.create(job=HEARTBEAT_JOB, stream="health", status=SyncRunStatus.SUCCEEDED,
                               started_at=now, finished_at=now, counts=counts)
    return now.isoformat()


def schedules_ensure() -> None:
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name="health: worker heartbeat",
        defaults={"func": HEARTBEAT_TASK, "schedule_type": Schedule.MINUTES, "minutes": 1, "repeats": -1},
    )


def _timed(check):
    started = time.monotonic()
    try:
        result = check()
    except Exception as exc:  # noqa: BLE001 — the check's failure is its answer
        result = {"ok": False, "error": f"{type(exc).__name__}: {exc}"[:300]}
    result["ms"] = round((time.monotonic() - started) * 1000, 1)
    return result


def _database() -> dict:
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        cursor.fetchone()
    return {"ok": True, "vendor": connection.vendor}


def _broker() -> dict:
    from django_q.brokers import get_broker

    broker = get_broker()
    kind = "redis" if settings.Q_CLUSTER.get("redis") else "orm"
    if kind == "redis":
        broker.connection.ping()
    else:
        broker.queue_size()
    return {"ok": True, "kind": kind, "queued": broker.queue_size()}


def _worker(now) -> dict:
    from returnsync.models import SyncRun

    beat = SyncRun.objects.filter(job=HEARTBEAT_JOB).values_list("finished_at", flat=True).first()
    limit = settings.HEALTH_WORKER_MAX_AGE_SECONDS
    if beat is None:
        return {"ok": False, "error": "no worker heartbeat yet: is a django-q2 cluster running "
                                      "(manage.py qcluster) and the schedule set up (manage.py schedules_ensure)?"}
    age = (now - beat).total_seconds()
    result = {"ok": age <= limit, "last_beat_seconds_ago": round(age, 1), "limit_seconds": limit}
    if not result["ok"]:
        result["error"] = f"last worker heartbeat {int(age)} s ago (limit {limit} s): no cluster is running tasks"
    return result


def _schedule(now) -> dict:
    from django_q.models import Schedule

    limit = settings.HEALTH_SCHEDULE_MAX_LAG_SECONDS
    oldest = (Schedule.objects.exclude(repeats=0).filter(next_run__isnull=False).order_by("next_run")
              .values_list("name", "next_run").first())
    if oldest is None:
        return {"ok": False, "error": "no schedules: run manage.py schedules_ensure"}
    name, next_run = oldest
    lag = max((now - next_run).total_seconds(), 0.0)
    result = {"ok": lag <= limit, "lag_seconds": round(lag, 1), "limit_seconds": limit}
    if not result["ok"]:
        result["error"] = f"schedule {name!r} is {int(lag)} s overdue (limit {limit} s): is the scheduler running?"
    return result


def health_report(*, now=None) -> dict:
    """Every check's answer, and the names of those that failed."""
    now = now or timezone.now()
    checks = {"database": _timed(_database)}
    if checks["database"]["ok"]:
        checks["broker"] = _timed(_broker)
        checks["worker"] = _timed(lambda: _worker(now))
        checks["schedule"] = _timed(lambda: _schedule(now))
    else:  # the rest read the database: say so instead of piling up the same error
        for name in ("broker", "worker", "schedule"):
            checks[name] = {"ok": False, "error": "not checked: the database is down"} if name != "broker" \
                else _timed(_broker)
    failing = [name for name, result in checks.items() if not result["ok"]]
    return {"status": "ok" if not failing else "fail", "failing": failing, "checks": checks,
            "checked_at": now.isoformat(), "max_age": str(timedelta(seconds=settings.HEALTH_WORKER_MAX_AGE_SECONDS))}
