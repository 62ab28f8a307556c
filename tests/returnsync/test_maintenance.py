"""Planner statistics are refreshed on a schedule, so the queue's searches use their indexes."""
from __future__ import annotations

import pytest
from django.db import connection
from django_q.models import Schedule

from returnsync.maintenance import database_statistics_refresh
from returnsync.registry import schedules_ensure_all
from tests.exceptions_app.factories import ExceptionCaseFactory

pytestmark = pytest.mark.django_db


def test_refresh_gives_the_planner_statistics_for_the_exception_table():
    ExceptionCaseFactory.create_batch(3)
    assert database_statistics_refresh() == connection.vendor
    with connection.cursor() as cursor:
        if connection.vendor == "sqlite":
            cursor.execute("SELECT count(*) FROM sqlite_stat1 WHERE tbl = 'exceptions_app_exceptioncase'")
        else:
            cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = 'exceptions_app_exceptioncase'")
        assert cursor.fetchone()[0] > 0


def test_the_refresh_is_scheduled_hourly_once():
    schedules_ensure_all()
    schedules_ensure_all()
    schedule = Schedule.objects.get(func="returnsync.maintenance.database_statistics_refresh")
    assert schedule.schedule_type == Schedule.HOURLY
