"""/healthz for load balancers: no login, no data, 503 naming the failing part."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django_q.models import Schedule

from returnsync.health import worker_heartbeat
from returnsync.models import SyncRun
from returnsync.registry import schedules_ensure_all

pytestmark = pytest.mark.django_db


def get():
    return Client().get(reverse("healthz"))


def test_all_parts_working_is_200_without_login():
    schedules_ensure_all()
    worker_heartbeat()
    response = get()
    assert response.status_code == 200, response.json()
    body = response.json()
    assert body["status"] == "ok" and body["failing"] == []
    assert set(body["checks"]) == {"database", "broker", "worker", "schedule"}
    assert "no-cache" in response["Cache-Control"]


def test_no_worker_heartbeat_is_503_naming_the_worker():
    schedules_ensure_all()
    response = get()
    assert response.status_code == 503
    assert response.json()["failing"] == ["worker"] and response["X-Health-Failing"] == "worker"
    assert "no worker heartbeat yet" in response.json()["checks"]["worker"]["error"]


def test_a_stale_heartbeat_and_an_overdue_schedule_are_named():
    schedules_ensure_all()
    worker_heartbeat()
    SyncRun.objects.filter(job="worker_heartbeat").update(finished_at=timezone.now() - timedelta(minutes=10))
    Schedule.objects.update(next_run=timezone.now() - timedelta(hours=1))
    response = get()
    assert response.status_code == 503
    body = response.json()
    assert body["failing"] == ["worker", "schedule"]
    assert "600 s ago" in body["checks"]["worker"]["error"] or "s ago" in body["checks"]["worker"]["error"]
    assert "overdue" in body["checks"]["schedule"]["error"]


def test_the_heartbeat_is_one_row_however_often_it_beats():
    worker_heartbeat()
    worker_heartbeat()
    assert SyncRun.objects.filter(job="worker_heartbeat").count() == 1


def test_health_says_nothing_about_the_business():
    schedules_ensure_all()
    worker_heartbeat()
    text = get().content.decode()
    for word in ("return", "order", "exception", "refund"):
        assert word not in text.lower()


def test_the_sweeps_add_nothing_while_the_queue_holds_a_backlog(settings):
    """A lost task's work is swept up again, but not while a backlog still holds it: every
    minute the whole backlog would be queued once more."""
    from django_q.models import OrmQ
    from django_q.tasks import async_task

    from connectors import tasks
    from returnsync.models import InboundEvent
    from tests.factories import ConnectionFactory

    conn = ConnectionFactory()
    InboundEvent.objects.create(connection=conn, source=conn.kind, event_type="RETURN_STATUS_CHANGE",
                                dedupe_key=f"{conn.pk}:lost", body=b"{}", headers={})
    InboundEvent.objects.filter(dedupe_key=f"{conn.pk}:lost").update(received_at=timezone.now() - timedelta(hours=1))
    for n in range(tasks.BACKLOG + 1):
        async_task("math.floor", n)
    queued = OrmQ.objects.count()
    assert tasks.inbound_events_requeue() == 0 and tasks.writebacks_due() == 0
    assert OrmQ.objects.count() == queued
    OrmQ.objects.all().delete()
    assert tasks.inbound_events_requeue() == 1  # the queue drained: the lost event is queued again
