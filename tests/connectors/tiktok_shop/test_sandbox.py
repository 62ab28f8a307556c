"""The TikTok Shop sandbox driven over real HTTP (requests + signing), as a strict peer."""
from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlencode

import pytest
import requests
from django.core.management import call_command
from django.urls import include, path

from connectors.tiktok_shop.sandbox import api as sandbox
from connectors.tiktok_shop.sandbox.models import SandboxApp, SandboxReturn, SandboxWebhook
from connectors.tiktok_shop.signing import sign, verify_webhook

# Served on its own URLconf so these tests don't depend on connectors/urls.py.
urlpatterns = [path("sandbox/", include("connectors.tiktok_shop.sandbox.urls"))]

pytestmark = [pytest.mark.django_db(transaction=True), pytest.mark.urls(__name__)]

SEARCH = "/return_refund/202309/returns/search"


class Peer:
    """A minimal signed caller (deliberately not the project's client)."""

    def __init__(self, server_url: str, connection):
        self.base = connection.base_url
        self.creds = connection.credentials
        self.cipher = connection.options["shop_cipher"]
        self.server_url = server_url

    def call(self, method, api_path, *, query=None, body=None, token=None, timestamp=None, secret=None,
             shop=True, tamper=False):
        params = {"app_key": self.creds["app_key"], "timestamp": str(timestamp or int(time.time()))}
        if shop:
            params["shop_cipher"] = self.cipher
        params.update({k: str(v) for k, v in (query or {}).items()})
        raw = json.dumps(body).encode() if body is not None else b""
        params["sign"] = sign(secret or self.creds["app_secret"], api_path, params, raw)
        if tamper:
            params["timestamp"] = str(int(params["timestamp"]) - 1)
        headers = {"Content-Type": "application/json",
                   "x-tts-access-token": token or self.creds["access_token"]}
        return requests.request(method, f"{self.base}{api_path}?{urlencode(params)}", data=raw or None,
                                headers=headers, timeout=10)


@pytest.fixture
def peer(live_server):
    connection = sandbox.connect(name="sandbox-test", server_url=live_server.url)
    return Peer(live_server.url, connection)


def make_returns(conn, n, **kw):
    ids = []
    for i in range(n):
        order = sandbox.create_order(conn, lines=[{"sku_id": f"sku{i % 3}", "product_id": "p1", "sale_price": "10.00"}],
                                     postal_code="94107", create_time=1_700_000_000 + i, notify=False)
        ret = sandbox.create_return(conn, order_id=order["id"], create_time=1_700_000_000 + i * 10, notify=False, **kw)
        ids.append(ret["return_id"])
    return ids


# --- authentication -------------------------------------------------------------------------

def test_valid_call_succeeds_and_uses_the_real_envelope(peer):
    response = peer.call("GET", "/authorization/202309/shops", shop=False)
    body = response.json()
    assert response.status_code == 200 and body["code"] == 0
    assert set(body) == {"code", "message", "request_id", "data"}
    assert body["data"]["shops"][0]["cipher"] == peer.cipher


def test_bad_sign_stale_timestamp_and_expired_token_get_the_real_codes(peer):
    assert peer.call("POST", SEARCH, query={"page_size": 10}, body={}, secret="wrong").json()["code"] == 106001
    assert peer.call("POST", SEARCH, query={"page_size": 10}, body={}, tamper=True).json()["code"] == 106001
    stale = peer.call("POST", SEARCH, query={"page_size": 10}, body={}, timestamp=int(time.time()) - 600)
    assert stale.json()["code"] == 36009004
    future = peer.call("POST", SEARCH, query={"page_size": 10}, body={}, timestamp=int(time.time()) + 120)
    assert future.json()["code"] == 36009004
    sandbox.expire_access_token(peer.creds["app_key"])
    expired = peer.call("POST", SEARCH, query={"page_size": 10}, body={})
    assert expired.json()["code"] == 105002 and "data" not in expired.json()


def test_missing_shop_cipher_and_signing_with_the_prefixed_path_are_rejected(peer):
    assert peer.call("POST", SEARCH, query={"page_size": 10}, body={}, shop=False).json()["code"] == 36009004
    params = {"app_key": peer.creds["app_key"], "timestamp": str(int(time.time())), "shop_cipher": peer.cipher,
              "page_size": "10"}
    params["sign"] = sign(peer.creds["app_secret"], "/sandbox/tiktok" + SEARCH, params, b"")
    response = requests.post(f"{peer.base}{SEARCH}?{urlencode(params)}",
                             headers={"x-tts-access-token": peer.creds["access_token"]}, timeout=10)
    assert response.json()["code"] == 106001


def test_token_get_and_refresh(peer, live_server):
    auth = f"{live_server.url}/sandbox/tiktok-auth/api/v2/token"
    code = sandbox.issue_auth_code(peer.creds["app_key"])
    q = {"app_key": peer.creds["app_key"], "app_secret": peer.creds["app_secret"]}
    got = requests.get(f"{auth}/get", params={**q, "auth_code": code, "grant_type": "authorized_code"}).json()
    assert got["code"] == 0 and got["data"]["access_token_expire_in"] > time.time()
    reused = requests.get(f"{auth}/get", params={**q, "auth_code": code, "grant_type": "authorized_code"}).json()
    assert reused["code"] != 0
    sandbox.expire_access_token(peer.creds["app_key"])
    refreshed = requests.get(f"{auth}/refresh", params={
        **q, "refresh_token": got["data"]["refresh_token"], "grant_type": "refresh_token"}).json()
    assert refreshed["code"] == 0
    ok = peer.call("GET", "/authorization/202309/shops", shop=False, token=refreshed["data"]["access_token"])
    assert ok.json()["code"] == 0
    wrong = requests.get(f"{auth}/refresh", params={**q, "app_secret": "nope", "refresh_token": "x",
                                                     "grant_type": "refresh_token"}).json()
    assert wrong["code"] != 0


# --- search, filters, orders, records --------------------------------------------------------

def test_pagination_returns_every_return_exactly_once(peer):
    ids = make_returns(peer.creds["app_key"], 33)
    for sort_field, sort_order in (("update_time", "ASC"), ("create_time", "DESC")):
        seen, token, pages = [], None, 0
        while True:
            query = {"page_size": 10, "sort_field": sort_field, "sort_order": sort_order}
            if token:
                query["page_token"] = token
            data = peer.call("POST", SEARCH, query=query, body={}).json()["data"]
            assert data["total_count"] == 33
            seen += [r["return_id"] for r in data["return_orders"]]
            pages += 1
            token = data.get("next_page_token")
            if not token:
                break
        assert sorted(seen) == sorted(ids) and len(seen) == 33 and pages == 4
    for bad in ("garbage", "W10", "eyJ4IjoxfQ"):  # not base64 JSON, a list, {"x":1}
        answer = peer.call("POST", SEARCH, query={"page_size": 10, "page_token": bad}, body={})
        assert answer.status_code == 400 and answer.json()["code"] == 36009004
    token = peer.call("POST", SEARCH, query={"page_size": 10}, body={}).json()["data"]["next_page_token"]
    other_filter = peer.call("POST", SEARCH, query={"page_size": 10, "page_token": token},
                             body={"return_status": ["AWAITING_BUYER_SHIP"]})
    assert other_filter.json()["code"] == 36009004
    first = peer.call("POST", SEARCH, query={"page_size": 10, "sort_field": "create_time", "sort_order": "ASC"},
                      body={}).json()["data"]["return_orders"]
    assert [r["create_time"] for r in first] == sorted(r["create_time"] for r in first)
    assert peer.call("POST", SEARCH, query={"page_size": 5}, body={}).json()["code"] == 36009004
    assert peer.call("POST", SEARCH, query={"page_size": 60}, body={}).json()["code"] == 36009004


def test_filters_and_wire_fields(peer):
    app = peer.creds["app_key"]
    ids = make_returns(app, 4)
    sandbox.advance_return(app, ids[0], to_status="AWAITING_BUYER_SHIP", update_time=1_800_000_000)

    def search(body):
        data = peer.call("POST", SEARCH, query={"page_size": 50}, body=body).json()["data"]
        return sorted(r["return_id"] for r in data["return_orders"])

    assert search({"return_ids": ids[1:3]}) == sorted(ids[1:3])
    assert search({"return_status": ["AWAITING_BUYER_SHIP"]}) == [ids[0]]
    assert search({"update_time_ge": 1_800_000_000}) == [ids[0]]
    assert search({"create_time_ge": 1_700_000_010, "create_time_lt": 1_700_000_030}) == sorted(ids[1:3])
    order_id = sandbox.return_state(app, ids[3])["order_id"]
    assert search({"order_ids": [order_id]}) == [ids[3]]
    ret = peer.call("POST", SEARCH, query={"page_size": 10}, body={"return_ids": [ids[3]]}).json()["data"][
        "return_orders"][0]
    assert ret["return_status"] == "RETURN_OR_REFUND_REQUEST_PENDING"
    assert ret["seller_next_action_response"][0]["action"] == "SELLER_RESPOND_RETURN"
    assert ret["seller_next_action_response"][0]["deadline"] == ret["create_time"] + 48 * 3600
    assert isinstance(ret["refund_amount"]["refund_total"], str)
    assert ret["return_line_items"][0]["order_line_item_id"]


def test_orders_get_with_bundles_and_one_line_per_unit(peer):
    app = peer.creds["app_key"]
    order = sandbox.create_order(app, postal_code="60614", lines=[
        {"sku_id": "B1", "sale_price": "30.00", "quantity": 1},
        {"sku_id": "S1", "sale_price": "5.00", "quantity": 2},
    ], bundle_components={"B1": [{"sku_id": "C1", "sku_count": 1}, {"sku_id": "C2", "sku_count": 2}]})
    other = sandbox.create_order(app, lines=[{"sku_id": "S2", "sale_price": "1.00"}], status="IN_TRANSIT")
    sandbox.advance_order(app, other["id"], to_status="DELIVERED")
    body = peer.call("GET", "/order/202309/orders", query={"ids": f"{order['id']},{other['id']}"}).json()
    assert body["code"] == 0
    got = body["data"]["orders"][0]
    assert got["recipient_address"]["postal_code"] == "60614"
    assert len(got["line_items"]) == 3
    bundle = next(li for li in got["line_items"] if li["sku_id"] == "B1")
    assert [c["sku_id"] for c in bundle["combined_listing_skus"]] == ["C1", "C2"]
    assert body["data"]["orders"][1]["status"] == "DELIVERED"
    product_id = got["line_items"][0]["product_id"]
    bad = peer.call("POST", f"/product/202309/products/{product_id}/inventory/update", body={"skus": ["x"]})
    assert bad.status_code == 400 and bad.json()["code"] == 36009004
    too_many = ",".join(str(i) for i in range(51))
    assert peer.call("GET", "/order/202309/orders", query={"ids": too_many}).json()["code"] == 36009004


# --- approve / reject state machine ------------------------------------------------------------

def approve(peer, return_id, decision, key, **extra):
    return peer.call("POST", f"/return_refund/202309/returns/{return_id}/approve",
                     query={"idempotency_key": key}, body={"decision": decision, **extra}).json()


def test_approve_state_machine_codes_and_records(peer):
    app = peer.creds["app_key"]
    [rid] = make_returns(app, 1)
    assert approve(peer, rid, "APPROVE_RECEIVED_PACKAGE", "k1")["code"] == 25011013
    assert approve(peer, rid, "APPROVE_RETURN", "k2")["code"] == 0
    assert approve(peer, rid, "APPROVE_RETURN", "k3")["code"] == 25020010
    assert sandbox.return_state(app, rid)["return_status"] == "AWAITING_BUYER_SHIP"
    sandbox.advance_return(app, rid, to_status="BUYER_SHIPPED_ITEM")
    assert approve(peer, rid, "APPROVE_RECEIVED_PACKAGE", "k4")["code"] == 25011013  # in transit
    sandbox.advance_return(app, rid, to_status="BUYER_SHIPPED_ITEM", next_actions=["SELLER_RESPOND_RECEIVE_PACKAGE"])
    assert approve(peer, rid, "APPROVE_RECEIVED_PACKAGE", "k5")["code"] == 0
    assert approve(peer, rid, "APPROVE_RECEIVED_PACKAGE", "k6")["code"] == 25020011
    state = sandbox.return_state(app, rid)
    assert state["return_status"] == "RETURN_OR_REFUND_REQUEST_SUCCESS" and state["received"]
    records = peer.call("GET", f"/return_refund/202309/returns/{rid}/records").json()["data"]["records"]
    assert [r["return_status"] for r in records] == [
        "RETURN_OR_REFUND_REQUEST_PENDING", "AWAITING_BUYER_SHIP", "BUYER_SHIPPED_ITEM", "BUYER_SHIPPED_ITEM",
        "RETURN_OR_REFUND_REQUEST_SUCCESS"]
    times = [r["create_time"] for r in records]
    assert times == sorted(times) and len(set(times)) == len(times)


def test_reject_and_partial_refund(peer):
    app = peer.creds["app_key"]
    a, b = make_returns(app, 2, return_type="REFUND")
    reject = peer.call("POST", f"/return_refund/202309/returns/{a}/reject", query={"idempotency_key": "r1"},
                       body={"decision": "REJECT_REFUND", "reject_reason": "seller_reject_apply_product_used"}).json()
    assert reject["code"] == 0
    assert sandbox.return_state(app, a)["return_status"] == "REFUND_OR_RETURN_REQUEST_REJECT"
    assert approve(peer, b, "OFFER_PARTIAL_REFUND", "p0", partial_refund={"amount": "999", "currency": "USD"})[
        "code"] == 36009004
    # US caps on a 10.00 item: 10-50 % of the price and at least 5.00, so only 5.00 goes.
    refused = approve(peer, b, "OFFER_PARTIAL_REFUND", "p1", partial_refund={"amount": "2.50", "currency": "USD"})
    assert refused["code"] == 36009004 and "between 5.00 and 5.00" in refused["message"]
    assert approve(peer, b, "OFFER_PARTIAL_REFUND", "p2", partial_refund={"amount": "5.00", "currency": "USD"})[
        "code"] == 0
    state = sandbox.return_state(app, b)
    assert state["return_status"] == "AWAITING_BUYER_RESPONSE"
    assert state["partial_refund"] == {"amount": "5.00", "currency": "USD"}
    assert state["seller_proposed_return_type"] == "PARTIAL_REFUND" and state["buyer_rejected_partial_refund"] is False


def test_idempotency_key_replays_the_same_answer(peer):
    app = peer.creds["app_key"]
    [rid] = make_returns(app, 1)
    first = approve(peer, rid, "APPROVE_RETURN", "same-key")
    again = approve(peer, rid, "APPROVE_RETURN", "same-key")
    assert first["code"] == again["code"] == 0 and again["data"] == {}
    assert len(sandbox.return_state(app, rid)["records"]) == 2  # applied once
    assert approve(peer, rid, "APPROVE_RETURN", "other-key")["code"] == 25020010
    wrong = peer.call("POST", f"/return_refund/202309/returns/{rid}/reject", query={"idempotency_key": "same-key"},
                      body={"decision": "REJECT_RETURN"}).json()
    assert wrong["code"] == 36009004


@pytest.mark.django_db
def test_create_return_walks_to_a_status_and_advance_takes_deadlines():
    app = sandbox.create_app(app_key="walk", app_secret="s")
    order = sandbox.create_order(app, lines=[{"sku_id": "S", "sale_price": "3.00", "quantity": 2}], notify=False)
    done = sandbox.create_return(app, order_id=order["id"], status="RETURN_OR_REFUND_REQUEST_COMPLETE")
    state = sandbox.return_state(app, done["return_id"])
    assert state["received"] and len(state["return_line_items"]) == 2
    assert [r["return_status"] for r in state["records"]][-2:] == [
        "RETURN_OR_REFUND_REQUEST_SUCCESS", "RETURN_OR_REFUND_REQUEST_COMPLETE"]
    replacement = sandbox.create_return(app, order_id=order["id"], status="REPLACEMENT_REQUEST_PENDING")
    assert replacement["return_type"] == "REPLACEMENT"
    assert replacement["seller_next_action_response"][0]["action"] == "SELLER_RESPOND_REPLACEMENT"
    moved = sandbox.advance_return(app, replacement["return_id"], to_status="REPLACEMENT_REQUEST_PENDING",
                                   next_actions=[{"action": "SELLER_RESPOND_REPLACEMENT", "deadline": 123}])
    assert moved["seller_next_action_response"] == [{"action": "SELLER_RESPOND_REPLACEMENT", "deadline": 123}]
    assert moved["update_time"] > replacement["update_time"]
    assert SandboxWebhook.objects.filter(type=12).count() >= 8


# --- inventory -----------------------------------------------------------------------------

def test_inventory_update_then_search_with_partial_errors(peer):
    app = peer.creds["app_key"]
    warehouses = sandbox.get_shop(app).warehouses
    sandbox.set_inventory(app, product_id="P9", sku_id="K1", quantities={warehouses[0]: 3, warehouses[1]: 4})
    update = peer.call("POST", "/product/202309/products/P9/inventory/update", body={"skus": [
        {"id": "K1", "inventory": [{"warehouse_id": warehouses[0], "quantity": 10},
                                   {"warehouse_id": "nope", "quantity": 1}]},
        {"id": "NOT-MINE", "inventory": [{"warehouse_id": warehouses[0], "quantity": 1}]},
    ]}).json()
    assert update["code"] == 0
    assert {e["detail"].get("warehouse_id", e["detail"]["sku_id"]) for e in update["data"]["errors"]} == {
        "nope", "NOT-MINE"}
    found = peer.call("POST", "/product/202309/inventory/search", body={"sku_ids": ["K1"]}).json()["data"]
    sku = found["inventory"][0]["skus"][0]
    assert found["inventory"][0]["product_id"] == "P9" and sku["id"] == "K1"
    assert sku["total_available_quantity"] == 14
    assert {w["warehouse_id"]: w["available_quantity"] for w in sku["warehouse_inventory"]} == {
        warehouses[0]: 10, warehouses[1]: 4}
    assert sandbox.inventory(app, "K1")["total"] == 14


# --- faults --------------------------------------------------------------------------------

def test_rate_limit_and_server_error_faults(peer):
    app = peer.creds["app_key"]
    sandbox.set_faults(app, rate_limit=3)
    answers = [peer.call("GET", "/authorization/202309/shops", shop=False) for _ in range(6)]
    limited = [r for r in answers if r.status_code == 429]
    assert len(limited) == 2 and all(r.json()["code"] == 36009002 for r in limited)
    sandbox.set_faults(app, server_error_next=1)
    assert peer.call("GET", "/authorization/202309/shops", shop=False).status_code == 503
    assert peer.call("GET", "/authorization/202309/shops", shop=False).status_code == 200
    sandbox.set_faults(app, server_error=0.5, seed=11)
    first = [peer.call("GET", "/authorization/202309/shops", shop=False).status_code for _ in range(8)]
    assert 503 in first and 200 in first
    sandbox.set_faults(app, latency_ms=150)
    started = time.monotonic()
    peer.call("GET", "/authorization/202309/shops", shop=False)
    assert time.monotonic() - started >= 0.15
    with pytest.raises(ValueError):
        sandbox.set_faults(app, no_such_fault=1)


# --- webhooks ------------------------------------------------------------------------------

class Receiver:
    def __init__(self, fail_first: int = 0):
        self.received: list[tuple[str, bytes]] = []
        self.fail_first = fail_first
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                if outer.fail_first > 0:
                    outer.fail_first -= 1
                    self.send_response(500)
                else:
                    outer.received.append((self.headers.get("Authorization", ""), body))
                    self.send_response(200)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/hook/"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def ids(self):
        return [json.loads(body)["tts_notification_id"] for _, body in self.received]


@pytest.fixture
def receiver():
    r = Receiver()
    yield r
    r.server.shutdown()


def _hooked_app(receiver, **faults):
    app = sandbox.create_app(app_key="hookapp", app_secret="hooksecret", webhook_url=receiver.url)
    sandbox.set_faults(app, **faults)
    return app


@pytest.mark.django_db  # no live server: a plain transaction is enough
def test_webhooks_are_delivered_signed_and_retried_after_failure(receiver):
    app = _hooked_app(receiver)
    order = sandbox.create_order(app, lines=[{"sku_id": "S", "sale_price": "3.00"}])
    ret = sandbox.create_return(app, order_id=order["id"])
    sandbox.advance_return(app, ret["return_id"], to_status="AWAITING_BUYER_SHIP")
    receiver.fail_first = 1
    assert sandbox.deliver_webhooks(app) == 2  # the first one failed, stays pending
    assert SandboxWebhook.objects.filter(status="pending").count() == 1
    assert sandbox.deliver_webhooks(app) == 1
    assert sandbox.deliver_webhooks(app) == 0
    assert len(receiver.received) == 3
    for authorization, body in receiver.received:
        assert verify_webhook("hookapp", "hooksecret", body, authorization)
    payloads = [json.loads(body) for _, body in receiver.received]
    assert sorted(p["type"] for p in payloads) == [1, 12, 12]
    statuses = [p["data"]["return_status"] for p in payloads if p["type"] == 12]
    assert sorted(statuses) == ["AWAITING_BUYER_SHIP", "RETURN_OR_REFUND_REQUEST_PENDING"]
    assert all(p["shop_id"] == sandbox.get_shop(app).shop_id for p in payloads)


@pytest.mark.django_db  # no live server: a plain transaction is enough
def test_webhook_drop_duplicate_and_reorder_faults(receiver):
    app = _hooked_app(receiver, seed=5, drop_webhooks=0.3, duplicate_webhooks=0.3, reorder_webhooks=True)
    order = sandbox.create_order(app, lines=[{"sku_id": "S", "sale_price": "3.00"}], notify=False)
    for i in range(20):
        sandbox.create_return(app, order_id=order["id"], return_id=f"40{i:016d}")
    queued = list(SandboxWebhook.objects.values_list("tts_notification_id", flat=True).order_by("id"))
    sandbox.deliver_webhooks(app)
    ids = receiver.ids()
    dropped = set(SandboxWebhook.objects.filter(status="dropped").values_list("tts_notification_id", flat=True))
    assert 0 < len(dropped) < 20
    assert set(ids) == set(queued) - dropped
    assert len(ids) > len(set(ids))  # some arrived twice
    first_seen = list(dict.fromkeys(ids))
    assert first_seen != [q for q in queued if q not in dropped]  # not in creation order


@pytest.mark.django_db  # no live server: a plain transaction is enough
def test_webhook_faults_are_deterministic_with_a_seed(receiver):
    outcomes = []
    for _run in range(2):
        SandboxApp.objects.filter(app_key="hookapp").delete()
        receiver.received.clear()
        app = _hooked_app(receiver, seed=9, drop_webhooks=0.5)
        order = sandbox.create_order(app, lines=[{"sku_id": "S", "sale_price": "3.00"}], notify=False)
        for i in range(10):
            sandbox.create_return(app, order_id=order["id"], return_id=f"40{i:016d}")
        rows = list(SandboxWebhook.objects.order_by("id"))
        # ids are random per run; pin them so the seeded decisions can be compared
        for i, row in enumerate(rows):
            SandboxWebhook.objects.filter(pk=row.pk).update(tts_notification_id=f"n{i}")
        sandbox.deliver_webhooks(app)
        outcomes.append(list(SandboxWebhook.objects.order_by("id").values_list("status", flat=True)))
    assert outcomes[0] == outcomes[1] and "dropped" in outcomes[0] and "delivered" in outcomes[0]


# --- scenario generator ------------------------------------------------------------------------

def _snapshot():
    return sorted((r.return_id, json.dumps(r.data, sort_keys=True),
                   json.dumps(list(r.records.values_list("event", "return_status", "create_time"))))
                  for r in SandboxReturn.objects.all())


@pytest.mark.django_db  # no live server: a plain transaction is enough
def test_sandbox_seed_is_deterministic_and_covers_every_status():
    args = ["--orders", "30", "--seed", "42", "--now", "1790000000", "--server-url", "http://127.0.0.1:8020"]
    call_command("sandbox_seed", *args)
    first = _snapshot()
    statuses = set(SandboxReturn.objects.values_list("return_status", flat=True))
    from connectors.tiktok_shop.sandbox.state import ALL_STATUSES
    assert statuses == set(ALL_STATUSES)
    call_command("sandbox_seed", *args)  # idempotent
    assert _snapshot() == first
    SandboxApp.objects.all().delete()  # a fresh sandbox, same connection
    call_command("sandbox_seed", *args)
    assert _snapshot() == first
    from returnsync.models import Connection
    conn = Connection.objects.get(name="TikTok Shop (sandbox)")
    assert conn.base_url == "http://127.0.0.1:8020/sandbox/tiktok"
    assert conn.options["shop_cipher"] and conn.credentials["access_token"]
    pending = SandboxReturn.objects.filter(return_status="RETURN_OR_REFUND_REQUEST_PENDING")
    assert all(r.data["seller_next_action_response"][0]["deadline"] > 1790000000 for r in pending)


def test_sandbox_traffic_survives_no_web_server_and_stops():
    call_command("sandbox_seed", "--orders", "20", "--seed", "1", "--server-url", "http://127.0.0.1:9")
    call_command("sandbox_traffic", "--iterations", "2", "--interval", "0", "--seed", "3",
                 "--server-url", "http://127.0.0.1:9")
    assert SandboxWebhook.objects.filter(status="pending", attempts__gte=1).exists()


@pytest.mark.django_db  # no live server: a plain transaction is enough
def test_connectors_urlconf_mounts_the_sandbox_without_login():
    from django.urls import resolve

    from connectors.tiktok_shop.sandbox import views

    assert resolve("/sandbox/tiktok" + SEARCH, urlconf="connectors.urls").func is views.open_api
    assert resolve("/sandbox/tiktok-auth/api/v2/token/get", urlconf="connectors.urls").func is views.token_get
    assert views.open_api.login_required is False and views.token_refresh.login_required is False
