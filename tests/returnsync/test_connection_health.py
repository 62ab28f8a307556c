"""The connection health badge follows one rule (``returnsync.selectors.HEALTH_RULE``): the
latest check decides Failing; a passing one with a share of failed calls since the latest
failure is Degraded; it says why on hover and in words, the same on every page."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connectors.tiktok_shop.sandbox import api as sandbox
from returnsync import selectors, services
from returnsync.models import ApiCall
from returnsync.roles import Role
from tests.factories import ApiCallFactory, ConnectionFactory, UserFactory

HTMX = {"HTTP_HX_REQUEST": "true"}


def calls(connection, *, ok: int, failed: int, ago: timedelta = timedelta(minutes=10)):
    made = [ApiCallFactory(connection=connection, http_status=200) for _ in range(ok)]
    made += [ApiCallFactory(connection=connection, http_status=503, error="busy") for _ in range(failed)]
    ApiCall.objects.filter(pk__in=[c.pk for c in made]).update(created_at=timezone.now() - ago)


@pytest.mark.django_db
def test_never_checked():
    health = selectors.connection_health(ConnectionFactory())
    assert (health.label, health.value) == ("Not checked yet", "")


@pytest.mark.django_db
def test_a_failed_test_is_failing_whatever_the_calls_before_said():
    now = timezone.now()
    conn = ConnectionFactory(last_success_at=now - timedelta(minutes=5), last_test_at=now, last_test_ok=False,
                             last_test_message="TikTokApiError: 106001 invalid sign")
    calls(conn, ok=177, failed=23)  # 11.5 % errors
    health = selectors.connection_health(conn)
    assert health.label == "Failing"
    assert "the connection test failed: TikTokApiError: 106001 invalid sign" in health.reason


@pytest.mark.django_db
def test_once_fixed_the_errors_before_the_fix_no_longer_count():
    now = timezone.now()
    conn = ConnectionFactory(last_error_at=now - timedelta(minutes=3), last_error="401",
                             last_test_at=now, last_test_ok=True, last_test_message="Connected: 1 shop")
    calls(conn, ok=10, failed=20, ago=timedelta(minutes=4))  # before the last failure
    calls(conn, ok=3, failed=0, ago=timedelta(minutes=1))
    health = selectors.connection_health(conn)
    assert health.label == "Healthy"
    assert "the connection test passed: Connected: 1 shop" in health.reason and "0 of 3" in health.reason


@pytest.mark.django_db
def test_passing_but_many_calls_retried_is_degraded_with_the_figures():
    conn = ConnectionFactory(last_success_at=timezone.now())
    calls(conn, ok=177, failed=23)
    health = selectors.connection_health(conn)
    assert (health.label, health.value) == ("Degraded", "retrying")
    assert "But 23 of 200 API calls since" in health.reason and "(11.5%)" in health.reason


@pytest.mark.django_db
@pytest.mark.parametrize(("ok", "failed", "ago", "label"), [
    (9, 1, timedelta(minutes=10), "Healthy"),  # one failure is not a pattern
    (40, 2, timedelta(minutes=10), "Healthy"),  # 4.8 % < 5 %
    (38, 2, timedelta(minutes=10), "Degraded"),  # 5 %
    (0, 50, timedelta(hours=2), "Healthy"),  # older than the hour
])
def test_the_thresholds(ok, failed, ago, label):
    conn = ConnectionFactory(last_success_at=timezone.now())
    calls(conn, ok=ok, failed=failed, ago=ago)
    assert selectors.connection_health(conn).label == label


@pytest.mark.django_db
def test_a_sync_after_a_failed_test_decides_again():
    now = timezone.now()
    conn = ConnectionFactory(last_test_at=now - timedelta(minutes=2), last_test_ok=False, last_test_message="x",
                             last_success_at=now)
    assert selectors.connection_health(conn).label == "Healthy"
    conn.last_error_at, conn.last_error = now + timedelta(seconds=1), "ConnectionError: refused"
    assert selectors.connection_health(conn).label == "Failing"
    assert "a call failed for good: ConnectionError: refused" in selectors.connection_health(conn).reason


@pytest.mark.django_db
def test_every_page_shows_the_same_badge_and_why(client_for_role):
    conn = ConnectionFactory(name="Busy shop", last_success_at=timezone.now())
    calls(conn, ok=17, failed=3)
    client = client_for_role(Role.ADMIN)
    for url in (reverse("connection_list"), reverse("sync_health"), reverse("connection_detail", args=[conn.pk]),
                reverse("home")):
        page = client.get(url).content.decode()
        assert 'data-health="Degraded"' in page, url
        assert "But 3 of 20 API calls since" in page, url
    assert selectors.with_health_counts(selectors.connection_list()).get(pk=conn.pk).health_failed_calls == 3


@pytest.mark.django_db(transaction=True)
def test_the_badge_follows_the_test_button_both_ways(live_server):
    conn = sandbox.connect(name="Badge shop", server_url=live_server.url)
    right = dict(conn.credentials)
    client = Client()
    client.force_login(UserFactory(username="badge-admin", roles=[Role.ADMIN]))
    url = reverse("connection_test", args=[conn.pk])

    ok = client.post(url, **HTMX).content.decode()
    assert 'id="connection-health"' in ok and 'hx-swap-oob="true"' in ok and 'data-health="Healthy"' in ok

    services.connection_set_secrets(connection=conn, credentials={"app_secret": "wrong-secret"})
    failed = client.post(url, **HTMX).content.decode()
    assert 'data-ok="false"' in failed and 'data-health="Failing"' in failed, "a failed test is never Healthy"
    page = client.get(reverse("connection_detail", args=[conn.pk])).content.decode()
    assert 'data-health="Failing"' in page

    services.connection_set_secrets(connection=conn, credentials={"app_secret": right["app_secret"]})
    fixed = client.post(url, **HTMX).content.decode()
    assert 'data-ok="true"' in fixed and 'data-health="Healthy"' in fixed, "once fixed, not Failing"
