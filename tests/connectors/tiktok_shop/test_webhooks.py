"""The TikTok webhook receiver (auth, dedupe, storage) and background processing."""
from __future__ import annotations

import json
import time

import pytest
from django.test import Client
from django.urls import reverse
from django_q.models import OrmQ

from connectors.tiktok_shop.client import TikTokClient
from connectors.tiktok_shop.sandbox import api as sandbox
from connectors.tiktok_shop.signing import webhook_signature
from connectors.webhooks import inbound_event_process
from returnsync.choices import InboundStatus
from returnsync.models import InboundEvent, MarketplaceReturn
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.urls("connectors.urls")


def body_for(kind=12, notification="n-1", **data) -> bytes:
    return json.dumps({"type": kind, "tts_notification_id": notification, "shop_id": "7", "timestamp": int(time.time()),
                       "data": {"order_id": "5770", "return_id": "4035", "return_status": "AWAITING_BUYER_SHIP",
                                "update_time": 1790000000, **data}}).encode()


def post(conn, body: bytes, signature: str | None = "auto", slug: str | None = None):
    headers = {}
    if signature == "auto":
        signature = webhook_signature(conn.credentials["app_key"], conn.credentials["app_secret"], body)
    if signature is not None:
        headers["HTTP_AUTHORIZATION"] = signature
    url = reverse("tiktok_webhook", args=[slug or conn.webhook_slug])
    return Client(enforce_csrf_checks=True).post(url, data=body, content_type="application/json", **headers)


@pytest.fixture
def conn(db):
    return ConnectionFactory()


@pytest.mark.django_db(transaction=True)
def test_valid_delivery_is_stored_raw_acknowledged_and_enqueued_after_commit():
    conn = ConnectionFactory()
    body = body_for()
    response = post(conn, body)
    assert response.status_code == 200 and response.json() == {"code": 0, "message": "success"}
    event = InboundEvent.objects.get()
    assert bytes(event.body) == body and event.status == InboundStatus.RECEIVED
    assert event.event_type == "RETURN_STATUS_CHANGE" and event.subject_ref == "4035"
    assert event.connection == conn and event.dedupe_key == f"{conn.pk}:n-1"
    assert "Authorization" not in event.headers and "authorization" not in {k.lower() for k in event.headers}
    assert event.headers.get("Content-Type") == "application/json"
    assert OrmQ.objects.count() == 1  # process_inbound_event queued once the row committed


@pytest.mark.parametrize("signature", [None, "", "0" * 64, "not-hex"])
def test_bad_or_missing_signature_is_401_and_nothing_is_stored(conn, signature):
    response = post(conn, body_for(), signature=signature)
    assert response.status_code == 401 and response.json()["message"] == "invalid signature"
    assert InboundEvent.objects.count() == 0


def test_signature_over_another_body_or_secret_is_rejected(conn):
    good = webhook_signature(conn.credentials["app_key"], conn.credentials["app_secret"], body_for())
    assert post(conn, body_for(notification="n-2"), signature=good).status_code == 401
    wrong = webhook_signature(conn.credentials["app_key"], "other-secret", body_for())
    assert post(conn, body_for(), signature=wrong).status_code == 401
    assert InboundEvent.objects.count() == 0


def test_unknown_or_disabled_connection_is_404(conn):
    assert post(conn, body_for(), slug="no-such-hook").status_code == 404
    conn.is_enabled = False
    conn.save()
    assert post(conn, body_for()).status_code == 404
    assert InboundEvent.objects.count() == 0


def test_only_post_is_allowed(conn):
    assert Client().get(reverse("tiktok_webhook", args=[conn.webhook_slug])).status_code == 405


def test_a_redelivery_is_acknowledged_as_duplicate_and_stored_once(conn):
    assert post(conn, body_for()).json()["message"] == "success"
    again = post(conn, body_for())
    assert again.status_code == 200 and again.json() == {"code": 0, "message": "duplicate"}
    assert InboundEvent.objects.count() == 1


def test_unknown_type_is_stored_ignored_and_acknowledged(conn):
    response = post(conn, body_for(kind=99, notification="n-99"))
    assert response.status_code == 200
    event = InboundEvent.objects.get()
    assert event.status == InboundStatus.IGNORED and event.event_type == "type 99" and event.error == ""


def test_malformed_json_with_a_valid_signature_is_400_and_a_dead_letter(conn):
    response = post(conn, b'{"type": 12, "tts_notification_id": ')
    assert response.status_code == 400 and response.json()["message"] == "malformed JSON"
    event = InboundEvent.objects.get()
    assert event.status == InboundStatus.FAILED and "malformed JSON" in event.error
    assert post(conn, b"[1, 2]").status_code == 400  # JSON, but not an object


def test_same_notification_id_on_two_connections_is_two_events(db):
    a, b = ConnectionFactory(), ConnectionFactory()
    assert post(a, body_for()).status_code == 200 and post(b, body_for()).status_code == 200
    assert InboundEvent.objects.count() == 2


def test_processing_a_failing_event_leaves_a_retriable_dead_letter(conn):
    post(conn, body_for(kind=12, notification="n-5", return_id=""))
    event = inbound_event_process(event_id=InboundEvent.objects.get().pk)
    assert event.status == InboundStatus.FAILED and "return_id" in event.error and event.attempts == 1
    assert inbound_event_process(event_id=event.pk).attempts == 2  # retried when called again


@pytest.mark.django_db(transaction=True)
def test_duplicated_and_reordered_webhooks_converge_on_the_sandbox_state(live_server):
    conn = sandbox.connect(name="webhook-test", server_url=live_server.url)
    sandbox.set_faults(conn, seed=4, duplicate_webhooks=0.5, reorder_webhooks=True)
    order = sandbox.create_order(conn, lines=[{"sku_id": "17001", "seller_sku": "TEE", "sale_price": "24.00"}],
                                 postal_code="94107")
    ret = sandbox.create_return(conn, order_id=order["id"])
    steps = (("AWAITING_BUYER_SHIP", None), ("BUYER_SHIPPED_ITEM", None),
             ("BUYER_SHIPPED_ITEM", ["SELLER_RESPOND_RECEIVE_PACKAGE"]))
    for step, (status, actions) in enumerate(steps, start=1):
        sandbox.advance_return(conn, ret["return_id"], to_status=status, next_actions=actions,
                               update_time=int(ret["update_time"]) + 10 * step)
    assert sandbox.deliver_webhooks(conn) >= 4
    client = TikTokClient(conn, sleep=lambda s: None)
    for event_id in InboundEvent.objects.filter(connection=conn).order_by("id").values_list("id", flat=True):
        assert inbound_event_process(event_id=event_id, client=client).status != InboundStatus.FAILED
    stored = MarketplaceReturn.objects.get(connection=conn, return_id=ret["return_id"])
    truth = sandbox.return_state(conn, ret["return_id"])
    assert stored.raw_status == truth["return_status"] == "BUYER_SHIPPED_ITEM"
    assert stored.next_action == "SELLER_RESPOND_RECEIVE_PACKAGE" and stored.stage == "received"
    assert stored.order.buyer_postal_code == "94107"
    # No notification was stored twice, and a re-run of every event changes nothing.
    ids = list(InboundEvent.objects.filter(connection=conn).values_list("dedupe_key", flat=True))
    assert len(ids) == len(set(ids))
    for event_id in InboundEvent.objects.filter(connection=conn).values_list("id", flat=True):
        inbound_event_process(event_id=event_id, client=client)
    assert MarketplaceReturn.objects.get(pk=stored.pk).source_updated_at == stored.source_updated_at


def test_stuck_and_dead_letter_events_are_requeued_until_out_of_attempts(conn):
    from datetime import timedelta

    from django.utils import timezone

    from connectors.webhooks import inbound_events_requeue

    post(conn, body_for(notification="stuck"))
    post(conn, b"{broken")
    InboundEvent.objects.update(received_at=timezone.now() - timedelta(hours=1))
    queued = OrmQ.objects.count()
    assert inbound_events_requeue() == 1  # the malformed body is never retried
    assert OrmQ.objects.count() == queued + 1
    InboundEvent.objects.filter(event_type="RETURN_STATUS_CHANGE").update(status=InboundStatus.FAILED, attempts=5)
    assert inbound_events_requeue() == 0
