"""Admin: the connection page (write-only secrets, live test, toggles, webhook URL) and
sync health with its retry buttons; CSRF on htmx posts."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connectors.tiktok_shop.sandbox import api as sandbox
from returnsync import services
from returnsync.choices import InboundStatus, JobStatus
from returnsync.models import Connection, InboundEvent
from returnsync.roles import Role
from returnsync.tables import webhook_path_for
from tests.factories import (
    ApiCallFactory,
    ConnectionFactory,
    DeadLetterFactory,
    InboundEventFactory,
    PortalConnectionFactory,
    SyncCursorFactory,
    UserFactory,
    WriteBackFactory,
    ZigZagFixedLetterFactory,
)

HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.mark.django_db
def test_connection_page_never_renders_a_secret(client_for_role):
    conn = ConnectionFactory(
        credentials={"app_key": "demo-app", "app_secret": "TOP-SECRET-123"},
        webhook_secret="WHSEC-XYZ",
    )

    content = (
        client_for_role(Role.ADMIN)
        .get(reverse("connection_detail", args=[conn.pk]))
        .content.decode()
    )

    assert "TOP-SECRET-123" not in content and "WHSEC-XYZ" not in content
    assert "demo-app" not in content, "not even a non-secret credential is rendered back"
    # One input per field of the connector's schema; secrets as empty password inputs.
    assert 'type="password" name="cred_app_secret"' in content and 'name="cred_app_secret" value' not in content
    assert 'type="text" name="cred_app_key"' in content and 'name="cred_app_key" value' not in content
    assert "The app&#x27;s key from TikTok Shop Partner Center. Now set: leave blank to keep it." in content
    assert 'name="credentials"' not in content, "no JSON box"
    assert f"http://testserver{webhook_path_for(conn)}" in content


@pytest.mark.django_db
def test_secrets_form_sets_and_a_blank_form_keeps_them(client_for_role):
    conn = ConnectionFactory(
        credentials={"app_key": "k", "app_secret": "old"}, webhook_secret="old-wh"
    )
    client = client_for_role(Role.ADMIN)
    url = reverse("connection_secrets", args=[conn.pk])

    saved = client.post(url, {"cred_app_secret": "new", "cred_app_key": "", "webhook_secret": ""}, follow=True)
    conn.refresh_from_db()
    assert (
        conn.credentials == {"app_key": "k", "app_secret": "new"}
        and conn.webhook_secret == "old-wh"
    )
    assert "Saved: App secret (stored encrypted, never shown)." in saved.content.decode()
    assert b">new<" not in saved.content

    kept = client.post(url, {"cred_app_secret": "", "webhook_secret": ""}, follow=True)
    conn.refresh_from_db()
    assert conn.credentials["app_secret"] == "new" and conn.webhook_secret == "old-wh"
    assert "Nothing entered: secrets kept as they were." in kept.content.decode()

    too_long = client.post(url, {"cred_app_secret": "x" * 5000})
    assert too_long.status_code == 400 and "at most 4000 characters" in too_long.content.decode()
    conn.refresh_from_db()
    assert conn.credentials["app_secret"] == "new"


@pytest.mark.django_db
def test_zigzag_connection_asks_for_its_own_fields(client_for_role):
    conn = PortalConnectionFactory(credentials={})
    content = client_for_role(Role.ADMIN).get(reverse("connection_detail", args=[conn.pk])).content.decode()
    assert 'type="text" name="cred_username"' in content and 'type="password" name="cred_password"' in content
    client_for_role(Role.ADMIN).post(reverse("connection_secrets", args=[conn.pk]),
                                     {"cred_username": "ops@brand", "cred_password": "pw-1"})
    conn.refresh_from_db()
    assert conn.credentials == {"username": "ops@brand", "password": "pw-1"}


@pytest.mark.django_db
def test_toggles_enable_and_sandbox_and_reject_nonsense(client_for_role):
    conn = ConnectionFactory(is_enabled=True, is_sandbox=True)
    client = client_for_role(Role.ADMIN)
    url = reverse("connection_toggle", args=[conn.pk])

    asked = client.post(url, {"field": "enabled", "value": "off"})
    conn.refresh_from_db()
    assert asked.status_code == 200 and "Disable" in asked.content.decode() and conn.is_enabled, \
        "without confirm=yes the page asks first"
    asked = client.post(url, {"field": "sandbox", "value": "off"})
    conn.refresh_from_db()
    assert "Mark" in asked.content.decode() and "as live?" in asked.content.decode() and conn.is_sandbox
    done = client.post(url, {"field": "enabled", "value": "off", "confirm": "yes"}, follow=True)
    client.post(url, {"field": "sandbox", "value": "off", "confirm": "yes"})
    conn.refresh_from_db()
    assert (conn.is_enabled, conn.is_sandbox) == (False, False)
    assert f"{conn}: disabled." in done.content.decode()
    client.post(url, {"field": "enabled", "value": "on"})  # turning it back on needs no confirmation
    conn.refresh_from_db()
    assert conn.is_enabled
    assert client.post(url, {"field": "base_url", "value": "on"}).status_code == 400


@pytest.mark.django_db(transaction=True)
def test_test_connection_shows_the_live_result_and_a_readable_failure(live_server):
    conn = sandbox.connect(name="Test button shop", server_url=live_server.url)
    client = Client()
    client.force_login(UserFactory(username="root-admin", roles=[Role.ADMIN]))
    url = reverse("connection_test", args=[conn.pk])

    ok = client.post(url, **HTMX)
    assert ok.status_code == 200
    assert 'data-ok="true"' in ok.content.decode() and "Test button shop" in ok.content.decode()

    services.connection_set_secrets(connection=conn, credentials={"app_secret": "wrong-secret"})
    failed = client.post(url, **HTMX)
    assert failed.status_code == 200
    assert (
        'data-ok="false"' in failed.content.decode()
        and "Connection failed" in failed.content.decode()
    )


@pytest.mark.django_db
def test_test_connection_without_a_connector_test_says_so(client_for_role):
    conn = ConnectionFactory(kind="loop")
    response = client_for_role(Role.ADMIN).post(reverse("connection_test", args=[conn.pk]), **HTMX)
    assert (
        response.status_code == 200
        and "No connection test for Loop yet" in response.content.decode()
    )


@pytest.mark.django_db
def test_htmx_posts_need_the_csrf_token(user_for_role):
    conn = ConnectionFactory(kind="loop")
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for_role(Role.ADMIN))
    url = reverse("connection_test", args=[conn.pk])

    assert client.post(url, **HTMX).status_code == 403

    page = client.get(reverse("connection_detail", args=[conn.pk]))
    token = page.context["csrf_token"]
    assert f'"X-CSRFToken": "{token}"' in page.content.decode()  # base.html hands it to htmx
    assert client.post(url, HTTP_X_CSRFTOKEN=str(token), **HTMX).status_code == 200


@pytest.mark.django_db
def test_sync_health_shows_lag_error_rate_queue_and_dead_letters(client_for_role):
    conn = ConnectionFactory(last_success_at=timezone.now())
    SyncCursorFactory(connection=conn, watermark=timezone.now() - timedelta(minutes=30))
    ApiCallFactory(connection=conn, http_status=200)
    ApiCallFactory(connection=conn, http_status=500)
    WriteBackFactory(connection=conn, marketplace_return__connection=conn, status=JobStatus.QUEUED)
    InboundEventFactory(connection=conn, status=InboundStatus.FAILED, error="bad json")

    response = client_for_role(Role.ADMIN).get(reverse("sync_health"))

    [health] = [h for h in response.context["health"] if h.connection == conn]
    assert health.error_rate == 50.0
    assert health.write_backs_queued == 1 and health.dead_letters == 1
    assert timedelta(minutes=29) < health.lag < timedelta(minutes=31)
    assert "bad json" in response.content.decode()


@pytest.mark.django_db
def test_retry_a_dead_letter_that_fails_again_says_why_and_keeps_it_listed(client_for_role):
    dead = DeadLetterFactory()
    done = InboundEventFactory(status=InboundStatus.PROCESSED)
    client = client_for_role(Role.ADMIN)

    response = client.post(
        reverse("inbound_retry", args=[dead.pk]), {"next": reverse("sync_health")}, follow=True
    )
    dead.refresh_from_db()
    page = response.content.decode()
    assert (dead.status, dead.attempts) == (InboundStatus.FAILED, 2)
    assert f"Event {dead.pk} failed again (attempt 2): ValueError: event names no return" in page
    assert "No dead letters" not in page
    dead_letters = page[page.index('data-table="dead-letters"'):]
    assert f'action="{reverse("inbound_retry", args=[dead.pk])}"' in dead_letters, "still listed: the truth"

    refused = client.post(reverse("inbound_retry", args=[done.pk]), follow=True)
    assert "Not retried" in refused.content.decode()
    assert InboundEvent.objects.get(pk=done.pk).status == InboundStatus.PROCESSED
    assert client.post(reverse("inbound_retry", args=[999999])).status_code == 404


@pytest.mark.django_db
def test_retry_a_dead_letter_that_now_applies_says_so_and_leaves_the_list(client_for_role):
    from returnsync.models import PortalReturn

    dead = ZigZagFixedLetterFactory()
    response = client_for_role(Role.ADMIN).post(
        reverse("inbound_retry", args=[dead.pk]), {"next": reverse("sync_health")}, follow=True)
    dead.refresh_from_db()
    page = response.content.decode()
    assert dead.status == InboundStatus.PROCESSED and dead.error == ""
    assert f"Event {dead.pk} applied: processed on attempt 2." in page
    assert "No dead letters." in page
    assert PortalReturn.objects.filter(connection=dead.connection, external_id__startswith="ZZ-R").count() == 1


@pytest.mark.django_db
def test_retry_a_dead_write_back(client_for_role):
    write_back = WriteBackFactory(status=JobStatus.DEAD, attempts=8, max_attempts=8)
    client = client_for_role(Role.ADMIN)

    client.post(reverse("writeback_retry", args=[write_back.pk]), {"next": "https://evil.example/"})
    write_back.refresh_from_db()
    assert write_back.status == JobStatus.QUEUED and write_back.max_attempts > 8


@pytest.mark.django_db
def test_retry_redirects_only_within_the_site(client_for_role):
    dead = DeadLetterFactory()
    response = client_for_role(Role.ADMIN).post(
        reverse("inbound_retry", args=[dead.pk]), {"next": "https://evil.example/"}
    )
    assert response.url == reverse("sync_health")


@pytest.mark.django_db
def test_connection_list_links_each_connection_page(client_for_role):
    conn = PortalConnectionFactory()
    content = client_for_role(Role.ADMIN).get(reverse("connection_list")).content.decode()
    assert reverse("connection_detail", args=[conn.pk]) in content
    assert Connection.objects.count() == 1
