"""ZigZag connector against its sandbox over real HTTP: auth, mirroring exactly once,
unmirrorable returns, webhooks, polling backstop, retries through connectors.retry."""
from __future__ import annotations

import json
import time

import pytest
from django.test import Client

from connectors.jobs import write_back_run
from connectors.polling import poll_run
from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag import services
from connectors.zigzag.client import ZigZagApiError, ZigZagClient
from connectors.zigzag.sandbox import api as zigzag_sandbox
from connectors.zigzag.webhooks import webhook_signature
from returnsync.choices import Grade, InboundStatus, JobStatus
from returnsync.models import (
    ApiCall,
    Connection,
    InboundEvent,
    MarketplaceReturn,
    PortalReturn,
    WriteBack,
)
from returnsync.services import inbound_event_retry, write_back_retry
from tests.connectors.zigzag.conftest import drain, pump

pytestmark = [pytest.mark.django_db(transaction=True)]


def no_sleep(seconds: float) -> None:
    pass


def approved_return(tiktok, zigzag, *, lines=None) -> MarketplaceReturn:
    order = tiktok_sandbox.create_order(tiktok, lines=lines or [
        {"sku_id": "8101", "product_id": "8100", "seller_sku": "MUG", "sale_price": "12.50"}])
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")
    return ret["return_id"]


def test_token_is_cached_and_reissued_once_on_401(systems):
    _, zigzag, _ = systems
    client = ZigZagClient(zigzag, sleep=no_sleep)
    first = client.token()
    assert client.token() == first  # cached, not asked again
    assert Connection.objects.get(pk=zigzag.pk).credentials["token"] == first  # encrypted on the connection
    zigzag_sandbox.set_faults(zigzag, expire_tokens_next=1)
    assert client.list_returns() == ([], None)  # 401 → new token → success
    assert client.connection.credentials["token"] != first
    statuses = list(ApiCall.objects.filter(connection=zigzag, path__endswith="/returns")
                    .order_by("id").values_list("http_status", flat=True))
    assert statuses == [401, 200]
    # A token about to expire (inside the margin) is re-issued before use.
    current = zigzag.credentials["token"]
    zigzag.credentials = {**zigzag.credentials, "token_expires_at": int(time.time()) + 30}
    assert ZigZagClient(zigzag).token() != current


def test_wrong_password_is_a_clear_error_and_connection_test_reports(systems):
    _, zigzag, _ = systems
    assert services.connection_test(connection=zigzag).startswith("Connected: token issued")
    zigzag.credentials = {"username": zigzag.credentials["username"], "password": "wrong"}
    zigzag.save()
    with pytest.raises(ZigZagApiError, match="Wrong username or password"):
        services.connection_test(connection=zigzag)


def test_lost_create_answer_is_retried_and_finds_the_same_return(systems):
    tiktok, zigzag, _ = systems
    zigzag_sandbox.set_faults(zigzag, drop_create_response=1)
    return_id = approved_return(tiktok, zigzag)
    pump(tiktok, zigzag)  # TikTok webhook → sync → mirror queued → run (its answer is lost: 5 × 503 …)
    write_back = WriteBack.objects.get(connection=zigzag)
    if write_back.status == JobStatus.RETRYING:  # the client's own retries already found it otherwise
        WriteBack.objects.filter(pk=write_back.pk).update(next_attempt_at=None)
        write_back_run(write_back_id=write_back.pk, client=ZigZagClient(zigzag, sleep=no_sleep))
    write_back.refresh_from_db()
    assert write_back.status == JobStatus.SUCCEEDED
    assert zigzag_sandbox.ZigZagReturn.objects.filter(reference=return_id).count() == 1
    assert PortalReturn.objects.filter(connection=zigzag, return_ref=return_id).count() == 1
    # Asking again (listener, sweep) creates nothing more.
    assert services.mirror_sweep() == 0
    mreturn = MarketplaceReturn.objects.get(return_id=return_id)
    assert services.mirror_queue(connection=zigzag, marketplace_return=mreturn).pk == write_back.pk


def test_unmirrorable_return_stays_visible_with_its_reason_and_can_be_retried(systems):
    tiktok, zigzag, _ = systems
    return_id = approved_return(tiktok, zigzag, lines=[{"sku_id": "8201", "product_id": "8200",
                                                        "seller_sku": "", "sale_price": "9.00"}])
    pump(tiktok, zigzag)
    write_back = WriteBack.objects.get(connection=zigzag)
    assert write_back.status == JobStatus.DEAD
    assert "has no seller SKU" in write_back.last_error
    assert not zigzag_sandbox.ZigZagReturn.objects.exists()
    mreturn = MarketplaceReturn.objects.get(return_id=return_id)
    assert mreturn.events.filter(summary__contains="unmirrored").exists()
    # Fixed upstream (the SKU is now known): the dead write-back is retried by hand.
    mreturn.lines.update(seller_sku="FIXED-SKU")
    from returnsync.models import OrderLine
    OrderLine.objects.filter(order__order_id=mreturn.order_ref).update(seller_sku="FIXED-SKU")
    write_back_retry(write_back_id=write_back.pk)
    drain()
    write_back.refresh_from_db()
    assert write_back.status == JobStatus.SUCCEEDED
    assert zigzag_sandbox.return_state(zigzag, return_id)["items"][0]["sku"] == "FIXED-SKU"


def test_webhook_authentication_bad_bodies_and_duplicates(systems, live_server):
    _, zigzag, _ = systems
    url = f"/webhooks/zigzag/{zigzag.webhook_slug}/"
    client = Client()
    body = json.dumps({"event_id": "evt_1", "event": "return.received", "return_id": "ZZ1"}).encode()
    assert client.post(url, body, content_type="application/json").status_code == 401
    assert client.post(url, body, content_type="application/json",
                       HTTP_X_ZIGZAG_SIGNATURE="sha256=00").status_code == 401
    assert client.post("/webhooks/zigzag/nope/", body, content_type="application/json").status_code == 404
    assert not InboundEvent.objects.exists()
    signed = {"HTTP_X_ZIGZAG_SIGNATURE": webhook_signature(zigzag.webhook_secret, body)}
    first = client.post(url, body, content_type="application/json", **signed)
    again = client.post(url, body, content_type="application/json", **signed)
    assert (first.status_code, first.json()["message"]) == (200, "accepted")
    assert (again.status_code, again.json()["message"]) == (200, "duplicate")
    assert InboundEvent.objects.filter(source="zigzag").count() == 1
    bad = b"[1, 2]"
    response = client.post(url, bad, content_type="application/json",
                           HTTP_X_ZIGZAG_SIGNATURE=webhook_signature(zigzag.webhook_secret, bad))
    assert response.status_code == 400
    assert InboundEvent.objects.get(event_type="malformed").status == InboundStatus.FAILED


def test_dead_inbound_event_is_retried_through_connectors_retry(systems):
    tiktok, zigzag, _ = systems
    approved_return(tiktok, zigzag)
    pump(tiktok, zigzag)
    ret = zigzag_sandbox.ZigZagReturn.objects.get()
    zigzag_sandbox.scan(zigzag, ret.return_id)
    zigzag_sandbox.set_faults(zigzag, expire_tokens_next=0)
    # The event names only the return (no snapshot), and ZigZag is down when we re-fetch it.
    body = json.dumps({"event_id": "evt_ids_only", "event": "return.received", "return_id": ret.return_id}).encode()
    zigzag_sandbox.set_faults(zigzag, server_error=1.0)
    Client().post(f"/webhooks/zigzag/{zigzag.webhook_slug}/", body, content_type="application/json",
                  HTTP_X_ZIGZAG_SIGNATURE=webhook_signature(zigzag.webhook_secret, body))
    from connectors.webhooks import inbound_event_process
    event = InboundEvent.objects.get(dedupe_key__endswith="evt_ids_only")
    inbound_event_process(event_id=event.pk, client=ZigZagClient(zigzag, sleep=no_sleep))
    event.refresh_from_db()
    assert event.status == InboundStatus.FAILED and "unavailable" in event.error.lower()
    zigzag_sandbox.set_faults(zigzag)
    from django_q.models import OrmQ
    OrmQ.objects.all().delete()
    inbound_event_retry(event_id=event.pk)
    drain()
    event.refresh_from_db()
    assert event.status == InboundStatus.PROCESSED
    portal = PortalReturn.objects.get(external_id=ret.return_id)
    assert portal.received_at is not None and all(ln.received_quantity == ln.expected_quantity
                                                  for ln in portal.lines.all())


def test_polling_catches_what_dropped_webhooks_lost(systems):
    tiktok, zigzag, _ = systems
    approved_return(tiktok, zigzag)
    pump(tiktok, zigzag)
    ret = zigzag_sandbox.ZigZagReturn.objects.get()
    zigzag_sandbox.set_faults(zigzag, drop_webhooks=1.0)
    zigzag_sandbox.scan(zigzag, ret.return_id)
    zigzag_sandbox.grade(zigzag, ret.return_id, grades={"MUG": "damaged"})
    pump(tiktok, zigzag)
    portal = PortalReturn.objects.get(external_id=ret.return_id)
    assert portal.lines.get().grade == Grade.PENDING  # nothing arrived
    run = poll_run(connection=zigzag, client=ZigZagClient(zigzag, sleep=no_sleep))
    assert run.status == "succeeded" and run.counts["updated"] >= 1
    line = portal.lines.get()
    assert (line.received_quantity, line.grade, line.raw_grade) == (1, Grade.DAMAGED, "DAMAGED")
    portal.refresh_from_db()
    assert portal.partial_refund_amount == 0  # damaged: nothing refundable
    again = poll_run(connection=zigzag, client=ZigZagClient(zigzag, sleep=no_sleep))
    assert again.counts["created"] == 0


def test_a_portal_line_sold_as_the_bundle_sku_restocks_its_components(systems):
    tiktok, zigzag, warehouse = systems
    lines = [{"sku_id": "7901", "product_id": "7900", "seller_sku": "BUNDLE-1", "sale_price": "30.00",
              "combined_listing_skus": [
                  {"sku_id": "7201", "sku_count": 1, "product_id": "7200", "seller_sku": "CMP-A"},
                  {"sku_id": "7202", "sku_count": 1, "product_id": "7200", "seller_sku": "CMP-B"}]}]
    order = tiktok_sandbox.create_order(tiktok, lines=lines, stock=3)
    pump(tiktok, zigzag)
    from connectors.tiktok_shop.sync import order_refetch
    order_refetch(connection=tiktok, order_id=order["id"])
    # Opened in ZigZag directly (not mirrored), listing the bundle SKU itself.
    account = zigzag_sandbox.get_account(zigzag)
    ret, _ = zigzag_sandbox.create_return(account, reference="walk-in-1", order_reference=order["id"],
                                          items=[{"sku": "BUNDLE-1", "quantity": 1, "unit_price": "30.00"}])
    zigzag_sandbox.scan(zigzag, ret.return_id)
    zigzag_sandbox.grade(zigzag, ret.return_id)
    pump(tiktok, zigzag)
    assert tiktok_sandbox.inventory(tiktok, "7201")["warehouses"][warehouse] == 4
    assert tiktok_sandbox.inventory(tiktok, "7202")["warehouses"][warehouse] == 4


def test_a_zigzag_return_seen_before_its_tiktok_return_is_linked_and_acted_on_when_tiktok_arrives(systems):
    tiktok, zigzag, _ = systems
    order = tiktok_sandbox.create_order(tiktok, lines=[
        {"sku_id": "8101", "product_id": "8100", "seller_sku": "MUG", "sale_price": "12.50"}], notify=False)
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="BUYER_SHIPPED_ITEM", notify=False)
    tiktok_sandbox.advance_return(tiktok, ret["return_id"], to_status="BUYER_SHIPPED_ITEM",
                                  next_actions=["SELLER_RESPOND_RECEIVE_PACKAGE"], notify=False)
    # The warehouse opened and scanned it in ZigZag before TikTok's return reached us.
    account = zigzag_sandbox.get_account(zigzag)
    zz, _ = zigzag_sandbox.create_return(account, reference=ret["return_id"], order_reference=order["id"],
                                         items=[{"sku": "MUG", "quantity": 1, "unit_price": "12.50"}])
    zigzag_sandbox.scan(zigzag, zz.return_id)
    zigzag_sandbox.deliver_webhooks(zigzag)
    drain()
    portal = PortalReturn.objects.get(external_id=zz.return_id)
    assert portal.marketplace_return is None and portal.received_at is not None
    assert tiktok_sandbox.return_state(tiktok, ret["return_id"])["decisions"] == []

    from connectors.tiktok_shop.sync import return_refetch
    return_refetch(connection=tiktok, return_id=ret["return_id"])  # TikTok's return arrives
    drain()
    portal.refresh_from_db()
    assert portal.marketplace_return.return_id == ret["return_id"]
    assert PortalReturn.objects.filter(connection=zigzag).count() == 1  # linked, not mirrored a second time
    # Scanned but not inspected: the refund gate holds TikTok's full refund until it is.
    assert portal.release_state == "awaiting_inspection"
    assert tiktok_sandbox.return_state(tiktok, ret["return_id"])["decisions"] == []
    zigzag_sandbox.grade(zigzag, zz.return_id)
    zigzag_sandbox.deliver_webhooks(zigzag)
    drain()
    assert tiktok_sandbox.return_state(tiktok, ret["return_id"])["decisions"] == ["APPROVE_RECEIVED_PACKAGE"]
