"""Sync health charts: calls and errors per hour, lag behind the source, the busiest minute
against the rate limit, the quota where the connector reports one; open exceptions by type
on sync health and the runbook. Server-rendered, a fixed number of queries."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from returnsync import selectors
from returnsync.models import ApiCall
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory
from tests.factories import ApiCallFactory, ConnectionFactory, SyncRunFactory

pytestmark = pytest.mark.django_db


def _calls(conn, n, *, failed=0, hours_ago=0):
    rows = [ApiCallFactory(connection=conn) for _ in range(n)]
    rows += [ApiCallFactory(connection=conn, http_status=500) for _ in range(failed)]
    ApiCall.objects.filter(pk__in=[r.pk for r in rows]).update(created_at=timezone.now() - timedelta(hours=hours_ago))


def test_calls_and_errors_land_in_their_hour_and_lag_follows_the_polls():
    now = timezone.now()
    conn = ConnectionFactory(rate_limit_per_second=1)
    _calls(conn, 6, failed=2, hours_ago=3)
    _calls(conn, 4)
    SyncRunFactory(connection=conn, job="tiktok_poll", finished_at=now - timedelta(hours=5),
                   counts={"until": (now - timedelta(hours=5, minutes=1)).isoformat()})
    [chart] = selectors.sync_charts(connections=[conn], now=now)
    assert len(chart.hours) == 24
    assert (chart.hours[-4].calls, chart.hours[-4].errors) == (8, 2)
    assert chart.hours[-1].calls == 4 and chart.calls == 12 and chart.errors == 2
    # No poll since 5 h ago: the lag grows hour after hour.
    lags = [h.lag_minutes for h in chart.hours[-5:]]
    assert all(lag is not None for lag in lags) and lags == sorted(lags) and lags[-1] >= 5 * 60
    assert chart.hours[0].lag_minutes is None, "before the first poll: not polled yet"
    assert chart.peak_per_minute == 8 and chart.rate_used_percent == round(100 * 8 / 60, 1)
    assert chart.quota is None


def test_the_page_draws_the_charts_and_the_breakdown_in_a_fixed_number_of_queries(client_for_role):
    client = client_for_role(Role.ADMIN)
    conn = ConnectionFactory(name="Chart shop")
    _calls(conn, 3, failed=1)
    ExceptionCaseFactory(type_code="refund_lag", owner_role=Role.FINANCE)
    ExceptionCaseFactory(type_code="refund_lag", owner_role=Role.FINANCE)
    ExceptionCaseFactory(type_code="tracking_mismatch", owner_role=Role.CX)
    page = client.get(reverse("sync_health")).content.decode()
    chart = page[page.index(f'data-charts="{conn.pk}"'):]
    assert 'data-chart="calls"' in chart and 'data-calls="4" data-errors="1"' in chart
    assert "not reported by TikTok Shop" in chart
    breakdown = page[page.index("data-breakdown"):]
    assert 'data-type="refund_lag"' in breakdown
    first = breakdown.index('data-type="refund_lag"')
    assert breakdown.index('data-type="tracking_mismatch"') > first, "the largest type first"
    assert '<span class="bar-value" data-count>2</span>' in breakdown[first:first + 600]
    assert "type_code=refund_lag" in breakdown

    def count() -> int:
        with CaptureQueriesContext(db) as queries:
            assert client.get(reverse("sync_health")).status_code == 200
        return len(queries)

    before = count()
    for n in range(4):
        more = ConnectionFactory(name=f"More {n}")
        _calls(more, 2, failed=1, hours_ago=n)
        SyncRunFactory(connection=more, job="tiktok_poll", counts={"until": timezone.now().isoformat()})
    assert count() == before


def test_the_runbook_shows_counts_per_type(client_for_role):
    ExceptionCaseFactory(type_code="refund_lag", owner_role=Role.FINANCE)
    body = client_for_role(Role.CX).get(reverse("runbook")).content.decode()
    summary = body[body.index('id="summary-refund_lag"'):]
    assert 'data-count="open">1</a>' in summary[: summary.index("</tr>")]
