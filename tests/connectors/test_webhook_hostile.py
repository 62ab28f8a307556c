"""Signed but hostile or odd webhook bodies, through the shared receiver, for both
connectors: a 4xx with the reason and a dead letter an admin can see, never a 500
(issue 12, item 1). Nothing stored before is touched."""
from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import reverse

from connectors.tiktok_shop.signing import webhook_signature as tiktok_signature
from connectors.zigzag.webhooks import webhook_signature as zigzag_signature
from returnsync.choices import InboundStatus
from returnsync.models import InboundEvent
from tests.factories import ConnectionFactory, PortalConnectionFactory

pytestmark = [pytest.mark.urls("connectors.urls"), pytest.mark.django_db]


def tiktok_post(conn, body: bytes):
    signature = tiktok_signature(conn.credentials["app_key"], conn.credentials["app_secret"], body)
    client = Client(raise_request_exception=False)
    return client.post(reverse("tiktok_webhook", args=[conn.webhook_slug]), data=body,
                       content_type="application/json", HTTP_AUTHORIZATION=signature)


def zigzag_post(conn, body: bytes, header: str = "X-ZigZag-Signature"):
    client = Client(raise_request_exception=False)
    return client.post(reverse("zigzag_webhook", args=[conn.webhook_slug]), data=body,
                       content_type="application/json",
                       headers={header: zigzag_signature(conn.webhook_secret, body), "X-Request-Id": "r-1"})


def tiktok_body(notification="n-1", timestamp=None) -> bytes:
    return json.dumps({"type": 12, "tts_notification_id": notification, "shop_id": "7",
                       "timestamp": int(time.time()) if timestamp is None else timestamp,
                       "data": {"order_id": "5770", "return_id": "4035", "update_time": int(time.time())}}).encode()


def zigzag_body(occurred_at, event_id="e-1") -> bytes:
    body = {"event_id": event_id, "event": "return.received", "return_id": "ZZ-1", "occurred_at": "OCCURRED"}
    return json.dumps(body).encode().replace(b'"OCCURRED"', occurred_at.encode())


@pytest.fixture
def stored(db):
    """An event stored earlier, which no hostile delivery may disturb."""
    conn = ConnectionFactory()
    assert tiktok_post(conn, tiktok_body("kept")).status_code == 200
    return conn, InboundEvent.objects.get()


def _dead_letter() -> InboundEvent:
    return InboundEvent.objects.get(status=InboundStatus.FAILED)


@pytest.mark.parametrize("depth", [33, 1000, 100_000])
def test_tiktok_json_nested_deep_is_a_400_and_a_dead_letter(stored, depth):
    conn, kept = stored
    body = b'{"type": 12, "data": ' + b"[" * depth + b"]" * depth + b"}"
    response = tiktok_post(conn, body)
    assert response.status_code == 400 and response.json()["message"] == "malformed JSON"
    assert "nested deeper than 32 levels" in _dead_letter().error
    assert InboundEvent.objects.filter(pk=kept.pk, status=InboundStatus.RECEIVED).exists()


@pytest.mark.parametrize("occurred_at", ["Infinity", "-Infinity", "NaN", "1e20", "-1e20", '"12345678901234567890"',
                                         "12345678901234567890", '"2026-13-45T99:00:00"'])
def test_zigzag_occurred_at_out_of_any_range_is_not_a_500(occurred_at):
    conn = PortalConnectionFactory()
    response = zigzag_post(conn, zigzag_body(occurred_at))
    assert response.status_code == 200, response.content  # no time we can hold: taken as "not said"
    event = InboundEvent.objects.get()
    assert event.status == InboundStatus.RECEIVED and event.subject_ref == "ZZ-1"


def test_tiktok_body_signed_30_days_ago_is_refused_as_stale(stored):
    conn, kept = stored
    response = tiktok_post(conn, tiktok_body("old", timestamp=int(time.time()) - 30 * 86400))
    assert response.status_code == 400
    assert "stale" in response.json()["message"] and "window 24 h" in response.json()["message"]
    assert "30 days ago" in _dead_letter().error
    assert InboundEvent.objects.filter(status=InboundStatus.RECEIVED).count() == 1  # only the kept one


def test_tiktok_retry_12_hours_later_is_still_accepted():
    conn = ConnectionFactory()
    assert tiktok_post(conn, tiktok_body("late", timestamp=int(time.time()) - 12 * 3600)).status_code == 200


def test_tiktok_body_from_the_future_is_refused():
    conn = ConnectionFactory()
    response = tiktok_post(conn, tiktok_body("future", timestamp=int(time.time()) + 3600))
    assert response.status_code == 400 and "in the future" in response.json()["message"]


def test_zigzag_freshness_window_follows_its_week_of_resends_and_the_option():
    conn = PortalConnectionFactory()
    six_days = f'"{int(time.time()) - 6 * 86400}"'
    assert zigzag_post(conn, zigzag_body(six_days, "e-6")).status_code == 200
    thirty = f'"{int(time.time()) - 30 * 86400}"'
    assert zigzag_post(conn, zigzag_body(thirty, "e-30")).status_code == 400
    conn.options = {"webhook_max_age_hours": 24}
    conn.save()
    response = zigzag_post(conn, zigzag_body(six_days, "e-6b"))
    assert response.status_code == 400 and "window 24 h" in response.json()["message"]


def test_custom_zigzag_signature_header_is_verified_and_never_stored():
    conn = PortalConnectionFactory(options={"signature_header": "X-Brand-Hmac"})
    body = zigzag_body(f'"{int(time.time())}"')
    assert zigzag_post(conn, body).status_code == 401  # the default header is not the one configured
    response = zigzag_post(conn, body, header="X-Brand-Hmac")
    assert response.status_code == 200
    headers = {k.lower(): v for k, v in InboundEvent.objects.get().headers.items()}
    assert "x-brand-hmac" not in headers and "x-zigzag-signature" not in headers
    assert headers["x-request-id"] == "r-1"
    assert not any(zigzag_signature(conn.webhook_secret, body) in str(v) for v in headers.values())
