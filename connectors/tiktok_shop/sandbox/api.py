"""Public Python API of the TikTok Shop sandbox (used by tests, the scenario generator,
the traffic loop and other helpers).

    from connectors.tiktok_shop.sandbox import api as sandbox
    conn = sandbox.connect(name="TikTok (sandbox)", server_url="http://127.0.0.1:8000")
    order = sandbox.create_order(conn, lines=[{"sku_id": "1", "sale_price": "19.99"}], postal_code="94107")
    ret = sandbox.create_return(conn, order_id=order["id"])
    sandbox.advance_return(conn, ret["return_id"], to_status="AWAITING_BUYER_SHIP")
    sandbox.deliver_webhooks()

Every function taking ``app`` accepts a ``SandboxApp``, our ``Connection`` (matched by
its ``credentials["app_key"]``) or an app_key string. An app has exactly one shop.
"""
from __future__ import annotations

import base64
import hashlib
import json
import logging
import random
import secrets
import time
from datetime import timedelta
from decimal import ROUND_HALF_UP, Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.sandbox_kit import fault_rng, faults_clean
from connectors.tiktok_shop.sandbox import state as sm
from connectors.tiktok_shop.sandbox.models import (
    SandboxApp,
    SandboxInventory,
    SandboxOrder,
    SandboxReturn,
    SandboxReturnRecord,
    SandboxShop,
    SandboxToken,
    SandboxWebhook,
    SandboxWebhookAttempt,
)
from connectors.tiktok_shop.signing import webhook_signature

log = logging.getLogger(__name__)

ACCESS_TOKEN_TTL = 7 * 24 * 3600
REFRESH_TOKEN_TTL = 365 * 24 * 3600
# A notification is given up (status failed) only after this many attempts AND this long:
# a web server that is not up yet (make run starts everything at once) loses nothing.
WEBHOOK_MAX_ATTEMPTS = 10
WEBHOOK_GIVE_UP_AFTER = timedelta(hours=1)
TAX_RATE = Decimal("0.0825")
# Where a return keeps the sandbox's own bookkeeping (never served).
PRIVATE_KEY = "_sandbox"
CENTS = Decimal("0.01")

FAULT_KEYS = {
    "seed": None,                # makes every random fault decision reproducible
    "rate_limit": 0,             # every Nth API call answers HTTP 429 + 36009002
    "rate_limit_next": 0,        # the next K API calls answer 429
    "server_error": 0.0,         # probability of HTTP 503 per API call
    "server_error_next": 0,      # the next K API calls answer 503
    "latency_ms": 0,             # added to every API call
    "drop_webhooks": 0.0,        # probability a notification is never sent
    "duplicate_webhooks": 0.0,   # probability a notification is sent twice
    "reorder_webhooks": False,   # deliver each batch in a shuffled order
    # Targeted faults (the fault scenario, connectors.sandbox_faults):
    "ignore_decisions": [],      # return ids: seller decisions answer success but TikTok records nothing
    "unavailable_skus": [],      # sku ids: inventory search/update for them answer HTTP 503
    # "sku" or "sku@warehouse": left out of inventory search answers (a SKU TikTok does not
    # return, a warehouse missing after a shape change); updates still work.
    "hidden_inventory": [],
    # Probability that an API call is applied but its answer comes only after answer_lost_ms
    # (default 2500): a client with a shorter read timeout sees a timeout and must retry
    # safely (idempotency keys, read-first stock).
    "answer_lost": 0.0,
    "answer_lost_ms": 2500,
}


# --- helpers ----------------------------------------------------------------------------

def now_ts() -> int:
    return int(time.time())


def money(value) -> str:
    return str(Decimal(str(value)).quantize(CENTS, rounding=ROUND_HALF_UP))


def derived_id(prefix: str, *parts, digits: int = 18) -> str:
    """A numeric id (TikTok style) derived from ``parts``: deterministic, hard to collide."""
    h = int(hashlib.sha256("|".join(map(str, parts)).encode()).hexdigest(), 16)
    return prefix + str(h % 10 ** (digits - len(prefix))).zfill(digits - len(prefix))


def random_id(prefix: str, rng: random.Random | None = None, digits: int = 18) -> str:
    n = digits - len(prefix)
    value = rng.randrange(10 ** n) if rng is not None else secrets.randbelow(10 ** n)
    return prefix + str(value).zfill(n)


def get_app(app) -> SandboxApp:
    if isinstance(app, SandboxApp):
        return app
    if isinstance(app, str):
        return SandboxApp.objects.get(app_key=app)
    credentials = getattr(app, "credentials", None)
    if credentials is not None:
        return SandboxApp.objects.get(app_key=credentials["app_key"])
    raise TypeError(f"Not a sandbox app: {app!r}")


def get_shop(app) -> SandboxShop:
    return get_app(app).shops.order_by("id").first()


# --- apps, shops, tokens ------------------------------------------------------------------

def create_app(*, app_key: str | None = None, app_secret: str | None = None, webhook_url: str = "",
               shop_name: str = "Sandbox Shop") -> SandboxApp:
    """Create (or fetch by app_key) an app with one shop whose ids derive from the app_key."""
    app_key = app_key or secrets.token_hex(7)
    app_secret = app_secret or secrets.token_hex(20)
    app, created = SandboxApp.objects.get_or_create(
        app_key=app_key, defaults={"app_secret": app_secret, "webhook_url": webhook_url}
    )
    if not created:
        changed = []
        if app.app_secret != app_secret:
            app.app_secret = app_secret
            changed.append("app_secret")
        if webhook_url and app.webhook_url != webhook_url:
            app.webhook_url = webhook_url
            changed.append("webhook_url")
        if changed:
            app.save(update_fields=changed)
    if not app.shops.exists():
        SandboxShop.objects.create(
            app=app,
            shop_id=derived_id("7495", app_key, "shop", digits=19),
            cipher="ROW_" + base64.urlsafe_b64encode(
                hashlib.sha256(f"{app_key}|cipher".encode()).digest()[:24]).decode().rstrip("="),
            name=shop_name,
            region="US",
            code="US" + derived_id("", app_key, "code", digits=8),
            warehouses=[derived_id("7301", app_key, "wh", i, digits=19) for i in range(2)],
        )
    return app


def issue_tokens(app, *, auth_code: str = "") -> SandboxToken:
    now = now_ts()
    return SandboxToken.objects.create(
        app=get_app(app),
        auth_code=auth_code,
        access_token="TTP_" + secrets.token_urlsafe(24),
        access_token_expires_at=now + ACCESS_TOKEN_TTL,
        refresh_token="TTP_" + secrets.token_urlsafe(24),
        refresh_token_expires_at=now + REFRESH_TOKEN_TTL,
    )


def issue_auth_code(app) -> str:
    """An auth code the client can exchange at /api/v2/token/get (single use)."""
    code = "SBX_" + secrets.token_urlsafe(18)
    issue_tokens(app, auth_code=code)
    return code


def expire_access_token(app, access_token: str | None = None) -> None:
    """Make the sandbox answer 105002 for this token (default: every token of the app)."""
    qs = SandboxToken.objects.filter(app=get_app(app))
    if access_token:
        qs = qs.filter(access_token=access_token)
    qs.update(access_token_expires_at=now_ts() - 1)


def token_data(app: SandboxApp, token: SandboxToken) -> dict:
    shop = get_shop(app)
    return {
        "access_token": token.access_token,
        "access_token_expire_in": token.access_token_expires_at,
        "refresh_token": token.refresh_token,
        "refresh_token_expire_in": token.refresh_token_expires_at,
        "open_id": derived_id("", app.app_key, "open_id", digits=12),
        "seller_name": shop.name if shop else "",
        "seller_base_region": shop.region if shop else "US",
        "user_type": 0,
        "granted_scopes": ["seller.return_refund.basic", "seller.order.info", "seller.product.basic"],
    }


def connect(*, name: str, server_url: str, webhook_base_url: str | None = None):
    """Create/reuse a sandbox app + shop + tokens and our Connection row pointing at it."""
    from returnsync.choices import System
    from returnsync.models import Connection

    server_url = server_url.rstrip("/")
    conn = Connection.objects.filter(kind=System.TIKTOK_SHOP, name=name).first()
    creds = dict(conn.credentials or {}) if conn else {}
    app = create_app(app_key=creds.get("app_key") or None, app_secret=creds.get("app_secret") or None,
                     shop_name=name)
    shop = get_shop(app)
    token = None
    if creds.get("access_token"):
        token = SandboxToken.objects.filter(
            app=app, access_token=creds["access_token"], revoked=False,
            access_token_expires_at__gt=now_ts() + 3600,
        ).first()
    if token is None:
        token = issue_tokens(app)
    if conn is None:
        conn = Connection(kind=System.TIKTOK_SHOP, name=name)
    conn.base_url = f"{server_url}/sandbox/tiktok"
    conn.is_sandbox = True
    conn.credentials = {
        **creds,
        "app_key": app.app_key,
        "app_secret": app.app_secret,
        "access_token": token.access_token,
        "access_token_expires_at": token.access_token_expires_at,
        "refresh_token": token.refresh_token,
        "refresh_token_expires_at": token.refresh_token_expires_at,
    }
    conn.options = {
        **(conn.options or {}),
        "auth_base_url": f"{server_url}/sandbox/tiktok-auth",
        "shop_cipher": shop.cipher,
        "shop_id": shop.shop_id,
        "shop_name": shop.name,
        "region": shop.region,
    }
    conn.save()
    app.webhook_url = f"{(webhook_base_url or server_url).rstrip('/')}/webhooks/tiktok/{conn.webhook_slug}/"
    app.save(update_fields=["webhook_url"])
    return conn


# --- faults -------------------------------------------------------------------------------

def set_faults(app, **faults) -> dict:
    """Replace the app's fault settings (keys: see FAULT_KEYS; nothing given = no faults)."""
    cleaned = faults_clean(faults, FAULT_KEYS)
    app = get_app(app)
    app.faults = cleaned
    app.save(update_fields=["faults"])
    return app.faults


def add_faults(app, **faults) -> dict:
    """Merge faults into the app's current ones; list-valued keys are extended, not replaced."""
    unknown = set(faults) - set(FAULT_KEYS)
    if unknown:
        raise ValueError(f"Unknown fault(s): {', '.join(sorted(unknown))}")
    app = get_app(app)
    merged = dict(app.faults or {})
    for key, value in faults.items():
        if isinstance(FAULT_KEYS[key], list):
            merged[key] = sorted({*map(str, merged.get(key) or []), *map(str, value or [])})
        else:
            merged[key] = value
    app.faults = merged
    app.save(update_fields=["faults"])
    return app.faults


def targeted_fault(app: SandboxApp, key: str, ids) -> bool:
    """True when one of ``ids`` is listed under the targeted fault ``key``."""
    listed = set(map(str, (app.faults or {}).get(key) or []))
    return bool(listed) and any(str(i) in listed for i in ids)


def _fault_rng(app: SandboxApp, *parts) -> random.Random:
    return fault_rng(app.faults, *parts)


def answer_delay(app: SandboxApp) -> float:
    """Seconds to hold back the answer of a call that was applied (fault ``answer_lost``)."""
    faults = app.faults or {}
    rate = float(faults.get("answer_lost") or 0)
    if rate <= 0 or random.random() >= rate:
        return 0.0
    return int(faults.get("answer_lost_ms") or 2500) / 1000


def api_call_fault(app: SandboxApp) -> tuple[int, int, str] | None:
    """Count one API call and decide its fault: (http_status, code, message) or None."""
    faults = app.faults or {}
    latency = int(faults.get("latency_ms") or 0)
    if latency > 0:
        time.sleep(latency / 1000)
    SandboxApp.objects.filter(pk=app.pk).update(call_count=F("call_count") + 1)
    count = SandboxApp.objects.values_list("call_count", flat=True).get(pk=app.pk)
    if not faults:
        return None
    for key, answer in (
        ("rate_limit_next", (429, sm.RATE_LIMITED, "Too many requests, rate limit exceeded.")),
        ("server_error_next", (503, sm.SERVER_BUSY, "Service unavailable, please retry later.")),
    ):
        if int(faults.get(key) or 0) > 0:
            with transaction.atomic():
                fresh = SandboxApp.objects.select_for_update().get(pk=app.pk)
                left = int(fresh.faults.get(key) or 0)
                if left > 0:
                    fresh.faults[key] = left - 1
                    fresh.save(update_fields=["faults"])
                    return answer
    every = int(faults.get("rate_limit") or 0)
    if every > 0 and count % every == 0:
        return 429, sm.RATE_LIMITED, "Too many requests, rate limit exceeded."
    rate = float(faults.get("server_error") or 0)
    if rate > 0 and _fault_rng(app, count, "5xx").random() < rate:
        return 503, sm.SERVER_BUSY, "Service unavailable, please retry later."
    return None


# --- orders and inventory -------------------------------------------------------------------

def set_inventory(app, *, product_id: str, sku_id: str, quantities: dict[str, int] | None = None,
                  seller_sku: str = "") -> None:
    """Set absolute quantities per warehouse (default: every warehouse of the shop → 0)."""
    shop = get_shop(app)
    quantities = quantities if quantities is not None else {wh: 0 for wh in shop.warehouses}
    for warehouse_id, qty in quantities.items():
        SandboxInventory.objects.update_or_create(
            shop=shop, sku_id=str(sku_id), warehouse_id=str(warehouse_id),
            defaults={"product_id": str(product_id), "quantity": int(qty), "seller_sku": seller_sku},
        )


def inventory(app, sku_id: str) -> dict:
    """{"product_id", "sku_id", "total", "warehouses": {warehouse_id: quantity}}."""
    rows = list(SandboxInventory.objects.filter(shop=get_shop(app), sku_id=str(sku_id)))
    return {
        "product_id": rows[0].product_id if rows else None,
        "sku_id": str(sku_id),
        "total": sum(r.quantity for r in rows),
        "warehouses": {r.warehouse_id: r.quantity for r in rows},
    }


ORDER_STATUSES = ("UNPAID", "ON_HOLD", "AWAITING_SHIPMENT", "PARTIALLY_SHIPPING", "AWAITING_COLLECTION",
                  "IN_TRANSIT", "DELIVERED", "COMPLETED", "CANCELLED")


def create_order(app, *, lines: list[dict], postal_code: str = "10001",
                 bundle_components: dict[str, list[dict]] | None = None, order_id: str | None = None,
                 status: str = "DELIVERED", create_time: int | None = None, currency: str = "USD",
                 shipping_fee="0.00", buyer_name: str = "Sandbox Buyer", rng: random.Random | None = None,
                 notify: bool = True, stock: int | None = 25) -> dict:
    """Create an order; returns its wire payload (``GET /order/202309/orders``).

    ``lines``: ``[{"sku_id", "product_id", "seller_sku", "product_name", "sku_name",
    "sale_price", "quantity", "combined_listing_skus"}]`` (all optional but sku_id/price
    recommended). A line of quantity N becomes N line items, as on TikTok.
    ``bundle_components``: ``{bundle sku_id: [{"sku_id", "sku_count", "product_id",
    "seller_sku"}]}`` for virtual bundles. ``stock``: seed inventory for new SKUs.
    """
    shop = get_shop(app)
    bundle_components = bundle_components or {}
    order_id = order_id or random_id("57", rng)
    existing = SandboxOrder.objects.filter(shop=shop, order_id=order_id).first()
    if existing:
        return existing.data
    created = int(create_time if create_time is not None else now_ts())
    items = []
    subtotal = Decimal(0)
    for index, line in enumerate(lines):
        sku_id = str(line.get("sku_id") or derived_id("17", shop.shop_id, "sku", index, digits=19))
        product_id = str(line.get("product_id") or derived_id("17", shop.shop_id, "product", sku_id, digits=19))
        price = Decimal(str(line.get("sale_price", "19.99")))
        components = line.get("combined_listing_skus") or bundle_components.get(sku_id) or []
        components = [{"sku_id": str(c["sku_id"]), "sku_count": int(c.get("sku_count", 1)),
                       "product_id": str(c.get("product_id") or derived_id("17", shop.shop_id, "product",
                                                                        c["sku_id"], digits=19)),
                       "seller_sku": c.get("seller_sku", "")} for c in components]
        for unit in range(int(line.get("quantity", 1))):
            items.append({
                "id": derived_id("57", order_id, "line", index, unit),
                "sku_id": sku_id,
                "seller_sku": line.get("seller_sku", f"SKU-{sku_id[-6:]}"),
                "product_id": product_id,
                "product_name": line.get("product_name", f"Product {product_id[-4:]}"),
                "sku_name": line.get("sku_name", "Default"),
                "sku_image": f"https://p16-oec-va.ibyteimg.com/tos-maliva-i-o3syd03w52-us/{sku_id}.jpeg",
                "original_price": money(line.get("original_price", price)),
                "sale_price": money(price),
                "platform_discount": "0.00",
                "seller_discount": money(Decimal(str(line.get("original_price", price))) - price),
                "currency": currency,
                "display_status": status,
                "package_status": "DELIVERED" if status in ("DELIVERED", "COMPLETED") else "TO_FULFILL",
                "is_gift": False,
                "sku_type": "COMBO" if components else "NORMAL",
                "combined_listing_skus": components,
            })
            subtotal += price
        if stock is not None:
            for sku, prod, sellersku in [(sku_id, product_id, line.get("seller_sku", ""))] + [
                    (c["sku_id"], c["product_id"], c["seller_sku"]) for c in components]:
                if not SandboxInventory.objects.filter(shop=shop, sku_id=sku).exists():
                    set_inventory(shop.app, product_id=prod, sku_id=sku, seller_sku=sellersku,
                                  quantities={wh: stock for wh in shop.warehouses})
    tax = (subtotal * TAX_RATE).quantize(CENTS, rounding=ROUND_HALF_UP)
    data = {
        "id": order_id,
        "status": status,
        "create_time": created,
        "update_time": created,
        "paid_time": created + 5 if status != "UNPAID" else None,
        "user_id": derived_id("76", order_id, "buyer", digits=19),
        "buyer_message": "",
        "fulfillment_type": "FULFILLMENT_BY_SELLER",
        "shipping_type": "TIKTOK",
        "warehouse_id": shop.warehouses[0] if shop.warehouses else "",
        "tracking_number": derived_id("9400", order_id, "trk", digits=22)
        if status in ("IN_TRANSIT", "DELIVERED", "COMPLETED") else "",
        "shipping_provider": "USPS",
        "is_on_hold_order": status == "ON_HOLD",
        "payment": {
            "currency": currency,
            "sub_total": money(subtotal),
            "shipping_fee": money(shipping_fee),
            "tax": money(tax),
            "total_amount": money(subtotal + tax + Decimal(str(shipping_fee))),
            "original_total_product_price": money(subtotal),
            "seller_discount": "0.00",
            "platform_discount": "0.00",
        },
        "line_items": items,
    }
    if status not in ("UNPAID", "ON_HOLD"):
        data["recipient_address"] = {
            "name": buyer_name,
            "phone_number": "(+1)213*****55",
            "address_line1": f"{derived_id('', order_id, 'street', digits=3)} Market St",
            "address_line2": "",
            "postal_code": str(postal_code),
            "region_code": "US",
            "full_address": f"{derived_id('', order_id, 'street', digits=3)} Market St, Springfield, {postal_code}",
            "district_info": [
                {"address_level_name": "Country", "address_name": "United States", "address_level": "L0"},
                {"address_level_name": "State", "address_name": "California", "address_level": "L1"},
            ],
        }
    SandboxOrder.objects.create(shop=shop, order_id=order_id, status=status, create_time=created,
                                update_time=created, data=data)
    if notify:
        _queue_order_webhook(shop, data)
    return data


def get_order(app, order_id: str) -> dict:
    return SandboxOrder.objects.get(shop=get_shop(app), order_id=str(order_id)).data


def advance_order(app, order_id: str, *, to_status: str, update_time: int | None = None,
                  notify: bool = True) -> dict:
    """Change an order's status (e.g. IN_TRANSIT → DELIVERED) and queue a type-1 webhook."""
    shop = get_shop(app)
    with transaction.atomic():
        order = SandboxOrder.objects.select_for_update().get(shop=shop, order_id=str(order_id))
        at = max(int(update_time if update_time is not None else now_ts()), order.update_time + 1)
        data = dict(order.data, status=to_status, update_time=at, is_on_hold_order=to_status == "ON_HOLD")
        data["line_items"] = [dict(li, display_status=to_status) for li in data["line_items"]]
        order.data, order.status, order.update_time = data, to_status, at
        order.save()
        if notify:
            _queue_order_webhook(shop, data)
    return data


# --- returns ----------------------------------------------------------------------------------

def _refund_amount(items: list[dict], currency: str) -> dict:
    subtotal = sum((Decimal(i["refund_amount"]["refund_subtotal"]) for i in items), Decimal(0))
    tax = sum((Decimal(i["refund_amount"]["refund_tax"]) for i in items), Decimal(0))
    return {"currency": currency, "refund_total": money(subtotal + tax), "refund_subtotal": money(subtotal),
            "refund_shipping_fee": "0.00", "refund_tax": money(tax)}


def create_return(app, *, order_id: str, status: str | None = None, return_type: str = sm.RETURN_AND_REFUND,
                  order_line_item_ids: list[str] | None = None, return_id: str | None = None,
                  return_reason: str = "ecom_order_delivered_refund_and_return_reason_not_as_described",
                  return_reason_text: str = "Item not as described", create_time: int | None = None,
                  next_actions=None, rng: random.Random | None = None, notify: bool = True) -> dict:
    """Open a return on an order (default: every line item) in its initial status; with
    ``status`` set, walk it there through the state machine (records for each step)."""
    shop = get_shop(app)
    if status and status.startswith("REPLACEMENT_REQUEST"):
        return_type = sm.REPLACEMENT
    order = SandboxOrder.objects.get(shop=shop, order_id=str(order_id)).data
    return_id = return_id or random_id("40", rng)
    existing = SandboxReturn.objects.filter(shop=shop, return_id=return_id).first()
    if existing:
        return existing.data
    created = int(create_time if create_time is not None else now_ts())
    wanted = set(map(str, order_line_item_ids)) if order_line_item_ids else None
    currency = order["payment"]["currency"]
    items = []
    for line in order["line_items"]:
        if wanted is not None and line["id"] not in wanted:
            continue
        price = Decimal(line["sale_price"])
        tax = (price * TAX_RATE).quantize(CENTS, rounding=ROUND_HALF_UP)
        items.append({
            "return_line_item_id": derived_id("40", return_id, "line", line["id"]),
            "order_line_item_id": line["id"],
            "sku_id": line["sku_id"],
            "seller_sku": line["seller_sku"],
            "product_name": line["product_name"],
            "sku_name": line["sku_name"],
            "product_image": {"url": line["sku_image"], "height": 200, "width": 200},
            "refund_amount": {"currency": currency, "refund_total": money(price + tax),
                              "refund_subtotal": money(price), "refund_shipping_fee": "0.00",
                              "refund_tax": money(tax)},
        })
    if not items:
        raise ValueError("A return needs at least one order line item")
    initial = sm.initial_status(return_type)
    data = {
        "return_id": return_id,
        "order_id": order["id"],
        "return_type": return_type,
        "return_status": initial,
        "arbitration_status": "",
        "role": "BUYER",
        "return_reason": return_reason,
        "return_reason_text": return_reason_text,
        "return_method": "PLATFORM_SHIPPED" if return_type != sm.REFUND else "",
        "return_tracking_number": "",
        "return_provider_id": "",
        "return_provider_name": "",
        "shipment_type": "PLATFORM",
        "handover_method": "DROP_OFF",
        "create_time": created,
        "update_time": created,
        "seller_next_action_response": sm.action_list(sm.default_next_actions(initial, return_type), now=created),
        "refund_amount": _refund_amount(items, currency),
        "return_line_items": items,
        "is_combined_return": False,
        "combined_return_id": "",
        "can_buyer_keep_item": False,
        "return_warehouse_address": {"full_address": "1 Returns Way, Reno, NV 89502"},
    }
    ret = SandboxReturn.objects.create(
        shop=shop, return_id=return_id, order_id=order["id"], return_type=return_type,
        return_status=initial, create_time=created, update_time=created, data=data,
    )
    _record(ret, sm.EVENTS.get(initial, initial), f"Buyer requested a {return_type.lower()}", created)
    if notify:
        _queue_return_webhook(shop, data)
    if status and status != initial:
        for step_status, step_actions in _path_to(status, return_type):
            created += 60
            data = advance_return(shop.app, return_id, to_status=step_status, next_actions=step_actions,
                                  update_time=created, notify=notify)
    elif next_actions is not None:
        data = advance_return(shop.app, return_id, to_status=initial, next_actions=next_actions,
                              update_time=created, notify=False)
    return data


def _path_to(status: str, return_type: str) -> list[tuple[str, list | None]]:
    """Realistic steps from the initial status to ``status``."""
    delivered = [sm.RESPOND_RECEIVE]
    ship = [(sm.AWAITING_BUYER_SHIP, None), (sm.BUYER_SHIPPED_ITEM, None), (sm.BUYER_SHIPPED_ITEM, delivered)]
    if return_type == sm.REFUND:
        paths = {sm.SUCCESS: [(sm.SUCCESS, None)], sm.COMPLETE: [(sm.SUCCESS, None), (sm.COMPLETE, None)]}
    elif return_type == sm.REPLACEMENT:
        paths = {
            sm.AWAITING_BUYER_SHIP: ship[:1], sm.BUYER_SHIPPED_ITEM: ship[:2],
            sm.REJECT_RECEIVE_PACKAGE: ship + [(sm.REJECT_RECEIVE_PACKAGE, None)],
            sm.REPLACEMENT_COMPLETE: ship + [(sm.REPLACEMENT_COMPLETE, None)],
        }
    else:
        paths = {
            sm.AWAITING_BUYER_SHIP: ship[:1], sm.BUYER_SHIPPED_ITEM: ship[:2],
            sm.REJECT_RECEIVE_PACKAGE: ship + [(sm.REJECT_RECEIVE_PACKAGE, None)],
            sm.SUCCESS: ship + [(sm.SUCCESS, None)],
            sm.COMPLETE: ship + [(sm.SUCCESS, None), (sm.COMPLETE, None)],
        }
    return paths.get(status, [(status, None)])


def _record(ret: SandboxReturn, event: str, description: str, at: int, note: str = "") -> None:
    SandboxReturnRecord.objects.create(ret=ret, event=event, description=description[:300], note=note[:300],
                                       return_status=ret.return_status, create_time=at)


def _apply_status(ret: SandboxReturn, *, to_status: str, next_actions, update_time: int | None,
                  event: str | None = None, note: str = "", partial_refund: dict | None = None,
                  tracking_number: str = "") -> None:
    previous_actions = [a["action"] for a in ret.data.get("seller_next_action_response") or []]
    at = max(int(update_time if update_time is not None else now_ts()), ret.update_time + 1)
    if next_actions is None:
        next_actions = sm.default_next_actions(to_status, ret.return_type)
    if sm.RESPOND_RECEIVE in previous_actions and to_status in (sm.SUCCESS, sm.COMPLETE, sm.REPLACEMENT_COMPLETE):
        ret.received = True
    data = dict(ret.data)
    if tracking_number:  # the label the buyer used (e.g. the portal's)
        data["return_tracking_number"] = tracking_number
    if to_status == sm.BUYER_SHIPPED_ITEM and not data.get("return_tracking_number"):
        data["return_tracking_number"] = derived_id("1Z", ret.return_id, "tracking", digits=18)
        data["return_provider_id"] = "6617390139935889157"
        data["return_provider_name"] = "UPS"
    if partial_refund is not None:
        data["partial_refund"] = {"amount": money(partial_refund.get("amount", "0")),
                                  "currency": partial_refund.get("currency") or data["refund_amount"]["currency"]}
        data["seller_proposed_return_type"] = "PARTIAL_REFUND"
        data["buyer_rejected_partial_refund"] = False
        # Where the request stood before the offer: a buyer who rejects it sends it back there.
        data[PRIVATE_KEY] = {"offer_from": {"status": ret.return_status, "actions": previous_actions}}
    data["return_status"] = to_status
    data["update_time"] = at
    data["seller_next_action_response"] = sm.action_list(next_actions, now=at)
    ret.data = data
    ret.return_status = to_status
    ret.update_time = at
    ret.save()
    description = f"Status changed to {to_status}"
    if to_status == sm.BUYER_SHIPPED_ITEM and sm.RESPOND_RECEIVE in [a["action"] for a in data["seller_next_action_response"]]:
        event, description = event or "RETURN_PACKAGE_DELIVERED", "Return parcel delivered to the seller"
    _record(ret, event or sm.EVENTS.get(to_status, to_status), description, at, note)


def advance_return(app, return_id: str, *, to_status: str, next_actions=None, update_time: int | None = None,
                   notify: bool = True, note: str = "", partial_refund: dict | None = None,
                   tracking_number: str = "") -> dict:
    """Move a return to ``to_status`` as the buyer/platform would (no validation), record
    it and queue a type-12 webhook. ``next_actions``: action names or ``{action, deadline}``
    dicts (default: what the status implies; ``["SELLER_RESPOND_RECEIVE_PACKAGE"]`` with
    BUYER_SHIPPED_ITEM means the parcel was delivered). ``tracking_number``: the return
    label the buyer shipped with (default: TikTok's own, made up on BUYER_SHIPPED_ITEM)."""
    shop = get_shop(app)
    with transaction.atomic():
        ret = SandboxReturn.objects.select_for_update().get(shop=shop, return_id=str(return_id))
        _apply_status(ret, to_status=to_status, next_actions=next_actions, update_time=update_time, note=note,
                      partial_refund=partial_refund, tracking_number=tracking_number)
        if notify:
            _queue_return_webhook(shop, ret.data)
    return ret.data


def seller_decision(shop: SandboxShop, return_id: str, *, kind: str, decision: str,
                    partial_refund: dict | None = None, reject_reason: str = "", comment: str = "") -> None:
    """Apply approve/reject from the seller (the API); raises state.DecisionError."""
    with transaction.atomic():
        ret = SandboxReturn.objects.select_for_update().filter(shop=shop, return_id=str(return_id)).first()
        if ret is None:
            raise sm.DecisionError(sm.RETURN_NOT_FOUND, f"Return {return_id} does not exist.")
        actions = [a["action"] for a in ret.data.get("seller_next_action_response") or []]
        to_status = sm.decide(kind=kind, decision=decision, return_type=ret.return_type,
                              status=ret.return_status, actions=actions, received=ret.received)
        if decision == "OFFER_PARTIAL_REFUND":
            amount = (partial_refund or {}).get("amount")
            try:
                ok = Decimal(0) < Decimal(str(amount)) <= Decimal(ret.data["refund_amount"]["refund_total"])
            except (ArithmeticError, ValueError, TypeError):
                ok = False
            if not ok:
                raise sm.DecisionError(sm.INVALID_PARAMS, "partial_refund.amount is missing or out of range.")
            refused = sm.partial_refund_cap_error(region=shop.region, amount=Decimal(str(amount)),
                                                  price=Decimal(ret.data["refund_amount"]["refund_subtotal"]))
            if refused:
                raise sm.DecisionError(sm.INVALID_PARAMS, refused)
        if decision == "APPROVE_RECEIVED_PACKAGE":
            ret.received = True
        ret.decisions = [*ret.decisions, decision]
        note = " ".join(x for x in (reject_reason, comment) if x)
        _apply_status(ret, to_status=to_status, next_actions=None, update_time=None,
                      event=f"SELLER_{decision}", note=note,
                      partial_refund=partial_refund if decision == "OFFER_PARTIAL_REFUND" else None)
        _queue_return_webhook(shop, ret.data)


def public(data: dict) -> dict:
    """A return as the API shows it (without the sandbox's own bookkeeping)."""
    return {k: v for k, v in data.items() if k != PRIVATE_KEY}


def buyer_answers_partial_refund(app, return_id: str, *, accept: bool, update_time: int | None = None) -> dict:
    """The buyer answers the seller's partial-refund offer: accepted, TikTok refunds the
    offered amount (the buyer keeps the item) and the request succeeds, ``refund_amount``
    still the request's full figure and ``partial_refund`` what was paid; rejected, the
    request goes back to where it was before the offer, ``buyer_rejected_partial_refund`` true."""
    shop = get_shop(app)
    with transaction.atomic():
        ret = SandboxReturn.objects.select_for_update().get(shop=shop, return_id=str(return_id))
        if ret.return_status != sm.AWAITING_BUYER_RESPONSE:
            raise ValueError(f"return {return_id} has no partial-refund offer waiting ({ret.return_status})")
        data = dict(ret.data)
        offer = data.get("partial_refund") or {}
        before = (data.get(PRIVATE_KEY) or {}).get("offer_from") or {}
        if accept:  # refund_amount stays the request's figure; partial_refund says what was paid
            data["buyer_rejected_partial_refund"] = False
            data["can_buyer_keep_item"] = True
            ret.data = data
            _apply_status(ret, to_status=sm.SUCCESS, next_actions=[], update_time=update_time,
                          event="BUYER_ACCEPT_PARTIAL_REFUND", note=f"accepted {offer.get('amount')}")
        else:
            data["buyer_rejected_partial_refund"] = True
            ret.data = data
            _apply_status(ret, to_status=before.get("status") or sm.PENDING, next_actions=before.get("actions"),
                          update_time=update_time, event="BUYER_REJECT_PARTIAL_REFUND",
                          note=f"rejected {offer.get('amount')}")
        _queue_return_webhook(shop, ret.data)
    return public(ret.data)


def platform_decides(app, return_id: str, *, update_time: int | None = None) -> dict:
    """Nobody answered a delivered parcel before its deadline: TikTok approves the received
    package by itself and refunds the request in full."""
    shop = get_shop(app)
    with transaction.atomic():
        ret = SandboxReturn.objects.select_for_update().get(shop=shop, return_id=str(return_id))
        actions = [a["action"] for a in ret.data.get("seller_next_action_response") or []]
        if sm.RESPOND_RECEIVE not in actions:
            raise ValueError(f"return {return_id} does not wait for a receipt decision ({ret.return_status})")
        to_status = sm.REPLACEMENT_COMPLETE if ret.return_type == sm.REPLACEMENT else sm.SUCCESS
        _apply_status(ret, to_status=to_status, next_actions=[], update_time=update_time,
                      event="PLATFORM_AUTO_APPROVE_RECEIVED_PACKAGE", note="seller did not answer in time")
        _queue_return_webhook(shop, ret.data)
    return public(ret.data)


def return_state(app, return_id: str) -> dict:
    ret = SandboxReturn.objects.get(shop=get_shop(app), return_id=str(return_id))
    return {**public(ret.data), "received": ret.received, "decisions": list(ret.decisions),
            "records": list(ret.records.values("event", "return_status", "create_time", "description", "note"))}


# --- webhooks -----------------------------------------------------------------------------

def _queue(shop: SandboxShop, type_: int, data: dict) -> SandboxWebhook:
    notification_id = random_id("7", None, digits=19)
    body = {"type": type_, "tts_notification_id": notification_id, "shop_id": shop.shop_id,
            "timestamp": now_ts(), "data": data}
    return SandboxWebhook.objects.create(app_id=shop.app_id, tts_notification_id=notification_id, type=type_,
                                         body=json.dumps(body, separators=(",", ":")))


def _queue_return_webhook(shop: SandboxShop, data: dict) -> None:
    _queue(shop, 12, {
        "order_id": data["order_id"], "return_id": data["return_id"], "return_role": data.get("role", "BUYER"),
        "return_type": data["return_type"], "return_status": data["return_status"],
        "create_time": data["create_time"], "update_time": data["update_time"],
    })


def _queue_order_webhook(shop: SandboxShop, data: dict) -> None:
    _queue(shop, 1, {"order_id": data["id"], "order_status": data["status"],
                     "is_on_hold_order": data.get("is_on_hold_order", False), "update_time": data["update_time"]})


def _outbox():
    from connectors.sandbox_kit import Outbox

    def give_up(row) -> bool:
        return row.attempts >= WEBHOOK_MAX_ATTEMPTS and row.created_at < timezone.now() - WEBHOOK_GIVE_UP_AFTER

    def logged(row, status_code, error, duplicate) -> None:
        SandboxWebhookAttempt.objects.create(webhook=row, status_code=status_code, error=error, duplicate=duplicate)

    return Outbox(
        sender=lambda row: row.app, url=lambda app: app.webhook_url, faults=lambda app: app.faults or {},
        event_id=lambda row: row.tts_notification_id,
        headers=lambda app, row, body: {"Authorization": webhook_signature(app.app_key, app.app_secret, body)},
        give_up=give_up, attempt_logged=logged,
    )


def deliver_webhooks(app=None, *, limit: int = 500, timeout: float = 5.0, session=None) -> int:
    """POST pending notifications to each app's webhook URL; returns how many were
    delivered. Applies the app's drop/duplicate/reorder faults (``connectors.sandbox_kit``);
    a failure stays pending and is retried by every later call (given up after
    WEBHOOK_MAX_ATTEMPTS attempts and WEBHOOK_GIVE_UP_AFTER)."""
    from connectors.sandbox_kit import deliver

    qs = SandboxWebhook.objects.filter(status=SandboxWebhook.Status.PENDING).exclude(app__webhook_url="")
    if app is not None:
        qs = qs.filter(app=get_app(app))
    return deliver(list(qs.select_related("app").order_by("id")[:limit]), _outbox(), session=session,
                   timeout=timeout)
