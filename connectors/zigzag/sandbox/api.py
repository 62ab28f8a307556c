"""Public Python API of the ZigZag sandbox (tests, the scenario generator, the traffic
loop, the admin actions and the ``zigzag_sandbox`` command).

    from connectors.zigzag.sandbox import api as zz
    conn = zz.connect(name="ZigZag (sandbox)", server_url="http://127.0.0.1:8000")
    zz.scan(conn, return_id, received={"RS-01-0": 1}, location="ZZ-LDN-1")
    zz.grade(conn, return_id, grades={"RS-01-0": "SELLABLE"})
    zz.deliver_webhooks()

Every function taking ``account`` accepts a ``ZigZagAccount``, our ``Connection``
(matched by ``credentials["username"]``) or a username. Wire format (what
``connectors.zigzag.client`` speaks): see ``connectors/zigzag/README.md``.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import random
import secrets
import time
from datetime import datetime, timedelta
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.sandbox_kit import fault_rng, faults_clean
from connectors.zigzag.sandbox.models import ZigZagAccount, ZigZagReturn, ZigZagToken, ZigZagWebhook

TOKEN_TTL = 1800  # ZigZag JWTs live 30 minutes
PAGE_SIZE = 50
WEBHOOK_MAX_ATTEMPTS = 10
LABEL_CREATED, IN_TRANSIT, RECEIVED, GRADED = "Label Created", "In Transit", "Received", "Graded"
GRADES = ("SELLABLE", "DAMAGED", "DEFECTIVE", "WRONG_ITEM", "MISSING")
FAULT_KEYS = {
    "seed": None,               # reproducible random faults
    "rate_limit_next": 0,       # the next K API calls answer 429 + Retry-After
    "server_error_next": 0,     # the next K API calls answer 503
    "server_error": 0.0,        # probability of 503 per API call
    "latency_ms": 0,            # added to every API call
    "expire_tokens_next": 0,    # the next K authenticated calls find their JWT expired (401)
    "drop_create_response": 0,  # the next K creates are applied, then answer 503 (a lost answer)
    "drop_webhooks": 0.0,       # probability a webhook is never sent
    "duplicate_webhooks": 0.0,  # probability a webhook is sent twice
    "reorder_webhooks": False,  # deliver each batch in shuffled order
}


def get_account(account) -> ZigZagAccount:
    if isinstance(account, ZigZagAccount):
        return ZigZagAccount.objects.get(pk=account.pk)
    if hasattr(account, "credentials"):
        account = (account.credentials or {}).get("username", "")
    return ZigZagAccount.objects.get(username=str(account))


def create_account(*, username: str | None = None, password: str | None = None, webhook_url: str = "",
                   webhook_secret: str | None = None) -> ZigZagAccount:
    username = username or f"retailer-{secrets.token_hex(4)}"
    account, created = ZigZagAccount.objects.get_or_create(
        username=username, defaults={"password": password or secrets.token_urlsafe(16),
                                     "webhook_url": webhook_url,
                                     "webhook_secret": webhook_secret or secrets.token_urlsafe(24)})
    if not created and webhook_url:
        account.webhook_url = webhook_url
        account.save(update_fields=["webhook_url"])
    return account


def connect(*, name: str, server_url: str, webhook_base_url: str | None = None, tiktok_connection=None):
    """Create/reuse a sandbox account and our ZigZag ``Connection`` pointing at it."""
    from returnsync.choices import System
    from returnsync.models import Connection

    server_url = server_url.rstrip("/")
    conn = Connection.objects.filter(kind=System.ZIGZAG, name=name).first()
    creds = dict(conn.credentials or {}) if conn else {}
    account = create_account(username=creds.get("username") or None, password=creds.get("password") or None,
                             webhook_secret=(conn.webhook_secret if conn else None) or None)
    if conn is None:
        conn = Connection(kind=System.ZIGZAG, name=name)
    conn.base_url = f"{server_url}/sandbox/zigzag"
    conn.is_sandbox = True
    conn.credentials = {"username": account.username, "password": account.password}
    conn.webhook_secret = account.webhook_secret
    options = dict(conn.options or {})
    if tiktok_connection is not None:
        options["tiktok_connection_id"] = tiktok_connection.pk
    conn.options = options
    conn.save()
    account.webhook_url = f"{(webhook_base_url or server_url).rstrip('/')}/webhooks/zigzag/{conn.webhook_slug}/"
    account.save(update_fields=["webhook_url"])
    return conn


# --- tokens and faults ----------------------------------------------------------------------


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def issue_token(account) -> tuple[str, int]:
    """A JWT (HS256 over the account password) valid for 30 minutes."""
    account = get_account(account)
    expires_at = int(time.time()) + TOKEN_TTL
    head = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    body = _b64(json.dumps({"sub": account.username, "exp": expires_at, "jti": secrets.token_hex(8)}).encode())
    sig = _b64(hmac.new(account.password.encode(), f"{head}.{body}".encode(), hashlib.sha256).digest())
    token = f"{head}.{body}.{sig}"
    ZigZagToken.objects.create(account=account, token=token, expires_at=expires_at)
    return token, expires_at


def expire_tokens(account) -> int:
    """Make every token of the account expired (the next call answers 401)."""
    return ZigZagToken.objects.filter(account=get_account(account)).update(expires_at=0)


def account_for_token(token: str) -> ZigZagAccount | None:
    row = ZigZagToken.objects.select_related("account").filter(
        token=token, revoked=False, expires_at__gt=int(time.time())).first()
    return row.account if row else None


def set_faults(account, **faults) -> dict:
    cleaned = faults_clean(faults, FAULT_KEYS)
    account = get_account(account)
    account.faults = cleaned
    account.save(update_fields=["faults"])
    return account.faults


def _fault_rng(account: ZigZagAccount, *parts) -> random.Random:
    return fault_rng(account.faults, *parts)


def take_fault(account: ZigZagAccount, key: str) -> bool:
    """Use up one of a counted fault (``*_next``): True when it fires."""
    if not int((account.faults or {}).get(key) or 0):
        return False
    with transaction.atomic():
        fresh = ZigZagAccount.objects.select_for_update().get(pk=account.pk)
        left = int(fresh.faults.get(key) or 0)
        if left <= 0:
            return False
        fresh.faults[key] = left - 1
        fresh.save(update_fields=["faults"])
        return True


def api_call_fault(account: ZigZagAccount) -> tuple[int, str] | None:
    """Count one API call and decide its fault: (HTTP status, error) or None."""
    faults = account.faults or {}
    if int(faults.get("latency_ms") or 0) > 0:
        time.sleep(int(faults["latency_ms"]) / 1000)
    ZigZagAccount.objects.filter(pk=account.pk).update(call_count=F("call_count") + 1)
    if not faults:
        return None
    if take_fault(account, "rate_limit_next"):
        return 429, "rate_limited"
    if take_fault(account, "server_error_next"):
        return 503, "unavailable"
    count = ZigZagAccount.objects.values_list("call_count", flat=True).get(pk=account.pk)
    if float(faults.get("server_error") or 0) > 0 and _fault_rng(account, count).random() < float(
            faults["server_error"]):
        return 503, "unavailable"
    return None


# --- returns ------------------------------------------------------------------------------


def _touch(ret: ZigZagReturn, at: datetime | None = None) -> None:
    """Strictly increasing ``updated_at``: receivers order snapshots by it. ``at`` backdates
    the change (the fault scenario plays a history that happened hours or days ago)."""
    now = at or timezone.now()
    ret.updated_at = max(now, ret.updated_at + timedelta(microseconds=1)) if ret.updated_at else now


def refund_amount(ret: ZigZagReturn) -> str | None:
    """The refund ZigZag authorised (sum of the items' ``refund_amount``), None before any."""
    amounts = [item["refund_amount"] for item in ret.items if item.get("refund_amount") is not None]
    if not amounts:
        return None
    return str(sum((Decimal(str(a)) for a in amounts), Decimal(0)).quantize(Decimal("0.01")))


def serialize(ret: ZigZagReturn) -> dict:
    data = {
        "id": ret.return_id, "reference": ret.reference, "order_reference": ret.order_reference,
        "status": ret.status, "location": ret.location, "tracking_number": ret.tracking_number,
        "carrier": ret.carrier, "currency": ret.currency, "items": ret.items,
        "created_at": ret.created_at.isoformat(), "updated_at": ret.updated_at.isoformat(),
        "received_at": ret.received_at.isoformat() if ret.received_at else None,
        "graded_at": ret.graded_at.isoformat() if ret.graded_at else None,
    }
    refund = refund_amount(ret)
    if refund is not None:
        data["refund_amount"] = refund
    return data


def _queue_webhook(ret: ZigZagReturn, event: str) -> ZigZagWebhook:
    event_id = f"evt_{secrets.token_hex(10)}"
    body = {"event_id": event_id, "event": event, "occurred_at": ret.updated_at.isoformat(),
            "return_id": ret.return_id, "reference": ret.reference, "return": serialize(ret)}
    return ZigZagWebhook.objects.create(account_id=ret.account_id, event_id=event_id, event=event,
                                        body=json.dumps(body, separators=(",", ":")))


def find_return(account, ref: str) -> ZigZagReturn:
    """By ZigZag id or by reference (the TikTok return id)."""
    account = get_account(account)
    ret = ZigZagReturn.objects.filter(account=account, return_id=str(ref)).first() or \
        ZigZagReturn.objects.filter(account=account, reference=str(ref)).first()
    if ret is None:
        raise ZigZagReturn.DoesNotExist(f"no sandbox ZigZag return {ref}")
    return ret


def create_return(account, *, reference: str, order_reference: str = "", items: list[dict],
                  currency: str = "", customer: dict | None = None, at: datetime | None = None,
                  tracking_number: str = "") -> tuple[ZigZagReturn, bool]:
    """Open a return and its label at once; a known ``reference`` returns the existing one.
    ``at`` backdates it; ``tracking_number`` sets the label's (default: a new one)."""
    account = get_account(account)
    reference = str(reference or "").strip()
    if not reference:
        raise ValueError("reference is required")
    if not items or not isinstance(items, list):
        raise ValueError("items must be a non-empty list")
    existing = ZigZagReturn.objects.filter(account=account, reference=reference).first()
    if existing is not None:
        return existing, False
    clean = []
    for n, item in enumerate(items, start=1):
        if not isinstance(item, dict) or not str(item.get("sku") or "").strip():
            raise ValueError(f"item {n}: sku is required")
        try:
            quantity = int(item.get("quantity") or 1)
        except (TypeError, ValueError):
            raise ValueError(f"item {n}: quantity must be a whole number") from None
        clean.append({"id": f"{n}", "item_reference": str(item.get("item_reference") or ""),
                      "sku": str(item["sku"]).strip(), "name": str(item.get("name") or ""),
                      "quantity": max(quantity, 1), "received_quantity": 0, "grade": "",
                      "unit_price": item.get("unit_price")})
    now = at or timezone.now()
    with transaction.atomic():
        ret = ZigZagReturn.objects.create(
            account=account, return_id=f"ZZ{secrets.randbelow(10 ** 9):09d}", reference=reference,
            order_reference=str(order_reference or ""), status=LABEL_CREATED, location=account.default_location,
            tracking_number=tracking_number or f"ZZT{secrets.randbelow(10 ** 10):010d}", carrier="Evri",
            currency=str(currency or "")[:3], customer=customer or {}, items=clean, created_at=now, updated_at=now,
        )
        _queue_webhook(ret, "return.label_created")
    return ret, True


def _change(account, ref: str, event: str, apply, at: datetime | None = None) -> dict:
    with transaction.atomic():
        ret = ZigZagReturn.objects.select_for_update().get(pk=find_return(account, ref).pk)
        apply(ret)
        _touch(ret, at)
        ret.save()
        _queue_webhook(ret, event)
    return serialize(ret)


def ship(account, ref: str, *, at: datetime | None = None) -> dict:
    """The buyer dropped the parcel off (``at``: when, default now)."""
    def apply(ret):
        ret.status = IN_TRANSIT
    return _change(account, ref, "return.in_transit", apply, at)


def _match(items: list[dict], key: str) -> dict:
    for item in items:
        if key in (item["id"], item["sku"], item.get("item_reference")):
            return item
    raise ValueError(f"no item {key!r} on this return")


def scan(account, ref: str, *, received: dict[str, int] | None = None, location: str | None = None,
         at: datetime | None = None) -> dict:
    """Warehouse receipt scan. ``received``: {item id or SKU: quantity}; None = all in full;
    items not named count 0."""
    def apply(ret):
        for item in ret.items:
            item["received_quantity"] = item["quantity"] if received is None else 0
        for key, qty in (received or {}).items():
            item = _match(ret.items, key)
            item["received_quantity"] = max(0, min(int(qty), item["quantity"]))
        ret.status = RECEIVED
        ret.received_at = ret.received_at or at or timezone.now()  # the first scan is the receipt
        if location:
            ret.location = location
    return _change(account, ref, "return.received", apply, at)


def grade(account, ref: str, *, grades: dict[str, str] | None = None, at: datetime | None = None) -> dict:
    """Grade items. ``grades``: {item id or SKU: grade}; None = every received item SELLABLE."""
    def apply(ret):
        if grades is None:
            for item in ret.items:
                if item["received_quantity"]:
                    item["grade"] = "SELLABLE"
        for key, value in (grades or {}).items():
            _match(ret.items, key)["grade"] = str(value).upper()
        ret.status = GRADED
        ret.graded_at = at or timezone.now()
    return _change(account, ref, "return.graded", apply, at)


def authorise_refund(account, ref: str, *, amounts: dict[str, str] | None = None,
                     at: datetime | None = None) -> dict:
    """ZigZag authorises the refund per item. ``amounts``: {item id or SKU: amount}; None =
    each received item's unit price × received quantity. R then carries ``refund_amount``."""
    def apply(ret):
        if amounts is None:
            for item in ret.items:
                price = Decimal(str(item.get("unit_price") or 0))
                item["refund_amount"] = str((price * item["received_quantity"]).quantize(Decimal("0.01")))
        for key, value in (amounts or {}).items():
            _match(ret.items, key)["refund_amount"] = str(Decimal(str(value)).quantize(Decimal("0.01")))
    return _change(account, ref, "return.refund_authorised", apply, at)


def queue_raw_webhook(account, body: dict, *, event: str = "return.updated") -> ZigZagWebhook:
    """Queue a webhook with exactly this body (signed like any other): e.g. a malformed
    event naming no return, which the receiver must dead-letter."""
    account = get_account(account)
    event_id = str(body.get("event_id") or f"evt_{secrets.token_hex(10)}")
    return ZigZagWebhook.objects.create(account=account, event_id=event_id, event=event,
                                        body=json.dumps(body, separators=(",", ":")))


def return_state(account, ref: str) -> dict:
    return serialize(find_return(account, ref))


def list_returns(account: ZigZagAccount, *, updated_since: datetime | None, page: int) -> tuple[list[dict], int | None]:
    qs = ZigZagReturn.objects.filter(account=account).order_by("updated_at", "id")
    if updated_since is not None:
        qs = qs.filter(updated_at__gte=updated_since)
    page = max(page, 1)
    rows = list(qs[(page - 1) * PAGE_SIZE: page * PAGE_SIZE + 1])
    more = len(rows) > PAGE_SIZE
    return [serialize(r) for r in rows[:PAGE_SIZE]], (page + 1 if more else None)


# --- webhooks -----------------------------------------------------------------------------


def sign(secret: str, body: bytes) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def _outbox():
    from connectors.sandbox_kit import Outbox

    return Outbox(
        sender=lambda row: row.account, url=lambda acct: acct.webhook_url, faults=lambda acct: acct.faults or {},
        event_id=lambda row: row.event_id,
        headers=lambda acct, row, body: {"X-ZigZag-Signature": sign(acct.webhook_secret, body),
                                         "X-ZigZag-Event": row.event},
        give_up=lambda row: row.attempts >= WEBHOOK_MAX_ATTEMPTS,
    )


def deliver_webhooks(account=None, *, limit: int = 500, timeout: float = 5.0, session=None) -> int:
    """POST pending webhooks (signed ``X-ZigZag-Signature``), applying the account's
    drop/duplicate/reorder faults (``connectors.sandbox_kit``). A failure stays pending
    and is re-sent by later calls (ZigZag itself retries daily for a week); given up after
    WEBHOOK_MAX_ATTEMPTS."""
    from connectors.sandbox_kit import deliver

    qs = ZigZagWebhook.objects.filter(status=ZigZagWebhook.Status.PENDING).exclude(account__webhook_url="")
    if account is not None:
        qs = qs.filter(account=get_account(account))
    return deliver(list(qs.select_related("account").order_by("id")[:limit]), _outbox(), session=session,
                   timeout=timeout)


def redeliver(account, event_id: str) -> None:
    """Send a delivered webhook again (ZigZag's daily retry, or a replay in a test)."""
    ZigZagWebhook.objects.filter(account=get_account(account), event_id=event_id).update(
        status=ZigZagWebhook.Status.PENDING)
