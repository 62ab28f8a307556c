"""HTTP face of the sandbox: a strict peer speaking the TikTok Shop Open API wire format.

Every Open API call is verified like the real gateway does: app_key, timestamp window
(now-5min..now+30s), signature over the path *without* the ``/sandbox/tiktok`` prefix,
the ``x-tts-access-token`` header, and ``shop_cipher`` on shop-scoped calls.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import re
import secrets
import time
from datetime import UTC, datetime

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.db.models import Q
from django.http import JsonResponse
from django.views.decorators.csrf import csrf_exempt

from connectors.tiktok_shop.sandbox import api
from connectors.tiktok_shop.sandbox import state as sm
from connectors.tiktok_shop.sandbox.models import (
    SandboxApp,
    SandboxIdempotency,
    SandboxInventory,
    SandboxOrder,
    SandboxReturn,
    SandboxShop,
    SandboxToken,
)
from connectors.tiktok_shop.signing import sign

TIMESTAMP_PAST = 300
TIMESTAMP_FUTURE = 30


class ApiError(Exception):
    def __init__(self, code: int, message: str, http_status: int = 200):
        super().__init__(message)
        self.code, self.message, self.http_status = code, message, http_status


def _request_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%d%H%M%S") + secrets.token_hex(10).upper()


def envelope(data=None, *, code: int = 0, message: str = "Success", http_status: int = 200) -> JsonResponse:
    body = {"code": code, "message": message, "request_id": _request_id()}
    if code == 0:
        body["data"] = data if data is not None else {}
    return JsonResponse(body, status=http_status)


def _json_body(request) -> dict:
    if not request.body:
        return {}
    try:
        body = json.loads(request.body)
    except ValueError:
        raise ApiError(sm.INVALID_PARAMS, "Request body is not valid JSON.", 400) from None
    if not isinstance(body, dict):
        raise ApiError(sm.INVALID_PARAMS, "Request body must be a JSON object.", 400)
    return body


def _int(value, name: str) -> int | None:
    if value in (None, ""):
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        raise ApiError(sm.INVALID_PARAMS, f"Invalid {name}.", 400) from None


def _str_list(value, name: str) -> list[str] | None:
    if value in (None, "", []):
        return None
    if isinstance(value, (str, int)):
        value = [value]
    if not isinstance(value, list):
        raise ApiError(sm.INVALID_PARAMS, f"{name} must be a list.", 400)
    return [str(v) for v in value]


# --- authentication -------------------------------------------------------------------------

def _authenticate(request, signed_path: str, *, shop_scoped: bool) -> tuple[SandboxApp, SandboxShop | None]:
    query = request.GET.dict()
    app_key, timestamp, signature = query.get("app_key"), query.get("timestamp"), query.get("sign")
    if not app_key or not timestamp or not signature:
        raise ApiError(sm.INVALID_PARAMS, "Missing app_key, timestamp or sign.", 401)
    app = SandboxApp.objects.filter(app_key=app_key).first()
    if app is None:
        raise ApiError(sm.INVALID_PARAMS, "Invalid app_key.", 401)
    try:
        ts = int(timestamp)
    except ValueError:
        raise ApiError(sm.INVALID_PARAMS, "Invalid timestamp.", 401) from None
    now = api.now_ts()
    if not (now - TIMESTAMP_PAST <= ts <= now + TIMESTAMP_FUTURE):
        raise ApiError(sm.INVALID_PARAMS, "Timestamp is expired or invalid.", 401)
    body = b"" if (request.content_type or "").startswith("multipart/") else request.body
    expected = sign(app.app_secret, signed_path, query, body)
    if not hmac.compare_digest(expected, signature.lower()):
        raise ApiError(sm.INVALID_SIGN, "Invalid sign.", 401)
    token_value = request.headers.get("x-tts-access-token", "")
    if not token_value:
        raise ApiError(sm.INVALID_PARAMS, "Missing access token.", 401)
    token = SandboxToken.objects.filter(app=app, access_token=token_value, revoked=False).first()
    if token is None:
        raise ApiError(sm.INVALID_TOKEN, "Invalid access token.", 401)
    if token.access_token_expires_at <= now:
        raise ApiError(sm.EXPIRED_TOKEN, "Access token is expired.", 401)
    shop = None
    if shop_scoped:
        cipher = query.get("shop_cipher")
        if not cipher:
            raise ApiError(sm.INVALID_PARAMS, "Missing shop_cipher.", 400)
        shop = SandboxShop.objects.filter(app=app, cipher=cipher).first()
        if shop is None:
            raise ApiError(sm.INVALID_PARAMS, "Invalid shop_cipher.", 400)
    return app, shop


# --- handlers -------------------------------------------------------------------------------

def shops_list(request, app, shop, **kw):
    return {"shops": [{"id": s.shop_id, "name": s.name, "region": s.region, "seller_type": "LOCAL",
                       "cipher": s.cipher, "code": s.code} for s in app.shops.all()]}


def _token_encode(payload: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(payload, separators=(",", ":")).encode()).decode().rstrip("=")


def _token_decode(token: str) -> tuple[str, int, int]:
    try:
        cursor = json.loads(base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)))
        return str(cursor["f"]), int(cursor["v"]), int(cursor["i"])
    except (ValueError, TypeError, KeyError):
        raise ApiError(sm.INVALID_PARAMS, "Invalid page_token.", 400) from None


def returns_search(request, app, shop, **kw):
    page_size = _int(request.GET.get("page_size"), "page_size")
    if page_size is None or not 10 <= page_size <= 50:
        raise ApiError(sm.INVALID_PARAMS, "page_size must be between 10 and 50.", 400)
    sort_field = request.GET.get("sort_field") or "create_time"
    sort_order = (request.GET.get("sort_order") or "DESC").upper()
    if sort_field not in ("create_time", "update_time") or sort_order not in ("ASC", "DESC"):
        raise ApiError(sm.INVALID_PARAMS, "Invalid sort_field or sort_order.", 400)
    body = _json_body(request)
    qs = SandboxReturn.objects.filter(shop=shop)
    for field, column in (("return_ids", "return_id"), ("order_ids", "order_id"),
                          ("return_types", "return_type"), ("return_status", "return_status")):
        values = _str_list(body.get(field), field)
        if values is not None:
            qs = qs.filter(**{f"{column}__in": values})
    for field in ("create_time", "update_time"):
        ge, lt = _int(body.get(f"{field}_ge"), f"{field}_ge"), _int(body.get(f"{field}_lt"), f"{field}_lt")
        if ge is not None:
            qs = qs.filter(**{f"{field}__gte": ge})
        if lt is not None:
            qs = qs.filter(**{f"{field}__lt": lt})
    fingerprint = hashlib.sha256(
        json.dumps([body, sort_field, sort_order], sort_keys=True, default=str).encode()).hexdigest()[:16]
    total = qs.count()
    page_token = request.GET.get("page_token")
    if page_token:
        token_fingerprint, v, i = _token_decode(page_token)
        if token_fingerprint != fingerprint:
            raise ApiError(sm.INVALID_PARAMS, "page_token does not match the request.", 400)
        if sort_order == "ASC":
            qs = qs.filter(Q(**{f"{sort_field}__gt": v}) | Q(**{sort_field: v, "id__gt": i}))
        else:
            qs = qs.filter(Q(**{f"{sort_field}__lt": v}) | Q(**{sort_field: v, "id__lt": i}))
    prefix = "" if sort_order == "ASC" else "-"
    rows = list(qs.order_by(f"{prefix}{sort_field}", f"{prefix}id")[: page_size + 1])
    more = len(rows) > page_size
    rows = rows[:page_size]
    next_token = ""
    if more:
        last = rows[-1]
        next_token = _token_encode({"v": getattr(last, sort_field), "i": last.id, "f": fingerprint})
    return {"return_orders": [api.public(r.data) for r in rows], "total_count": total, "next_page_token": next_token}


def return_records(request, app, shop, *, return_id, **kw):
    ret = SandboxReturn.objects.filter(shop=shop, return_id=return_id).first()
    if ret is None:
        raise ApiError(sm.RETURN_NOT_FOUND, f"Return {return_id} does not exist.", 404)
    return {"records": [{"event": r.event, "description": r.description, "note": r.note,
                         "return_status": r.return_status, "create_time": r.create_time,
                         "images": [], "videos": []} for r in ret.records.all()]}


def reject_reasons(request, app, shop, **kw):
    """GET /return_refund/202309/reject_reasons?return_or_cancel_id=: the reasons a seller may
    give for this request (by its type and where it stands)."""
    return_id = request.GET.get("return_or_cancel_id") or ""
    ret = SandboxReturn.objects.filter(shop=shop, return_id=return_id).first()
    if ret is None:
        raise ApiError(sm.RETURN_NOT_FOUND, f"Return {return_id} does not exist.", 404 if return_id else 400)
    actions = [a["action"] for a in ret.data.get("seller_next_action_response") or []]
    return {"reasons": [{"name": name, "text": text} for name, text in sm.reject_reasons(actions)]}


def _decision(request, app, shop, *, return_id, kind):
    body = _json_body(request)
    key = request.GET.get("idempotency_key") or ""
    operation = f"{kind}:{return_id}"
    if key:
        previous = SandboxIdempotency.objects.filter(shop=shop, key=key).first()
        if previous is not None:
            if previous.operation != operation:
                raise ApiError(sm.INVALID_PARAMS, "idempotency_key was used for a different request.", 400)
            return previous.response, previous.http_status
    if api.targeted_fault(app, "ignore_decisions", [return_id]):
        # Fault: TikTok answers success but records nothing (the return does not move).
        return {"code": 0, "message": "Success", "data": {}}, 200
    try:
        api.seller_decision(
            shop, return_id, kind=kind, decision=str(body.get("decision") or ""),
            partial_refund=body.get("partial_refund"), reject_reason=str(body.get("reject_reason") or ""),
            comment=str(body.get("comment") or ""),
        )
        response, status = {"code": 0, "message": "Success", "data": {}}, 200
    except sm.DecisionError as exc:
        response, status = {"code": exc.code, "message": exc.message}, 404 if exc.code == sm.RETURN_NOT_FOUND else 200
    # Only an applied decision is remembered: a refusal changed nothing, so the same key may
    # be sent again once the return's state allows it (what a write-back retry does).
    if key and response["code"] == 0:
        try:
            with transaction.atomic():
                SandboxIdempotency.objects.create(shop=shop, key=key, operation=operation,
                                                  http_status=status, response=response)
        except IntegrityError:  # a concurrent replay stored first: answer what it stored
            previous = SandboxIdempotency.objects.get(shop=shop, key=key)
            return previous.response, previous.http_status
    return response, status


def return_approve(request, app, shop, *, return_id, **kw):
    return _decision(request, app, shop, return_id=return_id, kind="approve")


def return_reject(request, app, shop, *, return_id, **kw):
    return _decision(request, app, shop, return_id=return_id, kind="reject")


def orders_get(request, app, shop, **kw):
    ids = [i for i in (request.GET.get("ids") or "").split(",") if i.strip()]
    if not ids:
        raise ApiError(sm.INVALID_PARAMS, "ids is required.", 400)
    if len(ids) > 50:
        raise ApiError(sm.INVALID_PARAMS, "At most 50 ids per request.", 400)
    found = {o.order_id: o.data for o in SandboxOrder.objects.filter(shop=shop, order_id__in=ids)}
    return {"orders": [found[i] for i in dict.fromkeys(ids) if i in found]}


def _inventory_payload(rows) -> list[dict]:
    products: dict[str, dict[str, list]] = {}
    for row in rows:
        products.setdefault(row.product_id, {}).setdefault(row.sku_id, []).append(row)
    return [{"product_id": product_id, "skus": [{
        "id": sku_id,
        "total_available_quantity": sum(r.quantity for r in sku_rows),
        "total_committed_quantity": 0,
        "warehouse_inventory": [{"warehouse_id": r.warehouse_id, "available_quantity": r.quantity,
                                 "committed_quantity": 0} for r in sku_rows],
    } for sku_id, sku_rows in skus.items()]} for product_id, skus in products.items()]


def _unavailable(app, sku_ids) -> None:
    """Fault ``unavailable_skus``: inventory calls about these SKUs answer HTTP 503."""
    if api.targeted_fault(app, "unavailable_skus", sku_ids):
        raise ApiError(sm.SERVER_BUSY, "Inventory service unavailable for this SKU, please retry later.", 503)


def inventory_search(request, app, shop, **kw):
    body = _json_body(request)
    sku_ids, product_ids = _str_list(body.get("sku_ids"), "sku_ids"), _str_list(body.get("product_ids"), "product_ids")
    if not sku_ids and not product_ids:
        raise ApiError(sm.INVALID_PARAMS, "sku_ids or product_ids is required.", 400)
    if len(sku_ids or []) > 100 or len(product_ids or []) > 100:
        raise ApiError(sm.INVALID_PARAMS, "At most 100 ids per request.", 400)
    _unavailable(app, sku_ids or [])
    qs = SandboxInventory.objects.filter(shop=shop)
    qs = qs.filter(sku_id__in=sku_ids) if sku_ids else qs.filter(product_id__in=product_ids)
    hidden = set(map(str, (app.faults or {}).get("hidden_inventory") or []))
    rows = [r for r in qs.order_by("product_id", "sku_id", "warehouse_id")
            if r.sku_id not in hidden and f"{r.sku_id}@{r.warehouse_id}" not in hidden]
    return {"inventory": _inventory_payload(rows)}


def inventory_update(request, app, shop, *, product_id, **kw):
    body = _json_body(request)
    skus = body.get("skus")
    if not isinstance(skus, list) or not skus:
        raise ApiError(sm.INVALID_PARAMS, "skus is required.", 400)
    _unavailable(app, [sku.get("id") for sku in skus if isinstance(sku, dict)])
    rows = {(r.sku_id, r.warehouse_id): r for r in SandboxInventory.objects.filter(shop=shop, product_id=product_id)}
    if not rows:
        raise ApiError(sm.PRODUCT_NOT_FOUND, f"Product {product_id} does not exist.", 200)
    product_skus = {sku for sku, _ in rows}
    errors = []
    with transaction.atomic():
        for sku in skus:
            if not isinstance(sku, dict) or not isinstance(sku.get("inventory") or [], list):
                raise ApiError(sm.INVALID_PARAMS, "Each sku needs an id and an inventory list.", 400)
            sku_id = str(sku.get("id") or "")
            if sku_id not in product_skus:
                errors.append({"code": sm.SKU_NOT_FOUND, "message": f"SKU {sku_id} is not in product {product_id}.",
                               "detail": {"sku_id": sku_id}})
                continue
            for entry in sku.get("inventory") or []:
                if not isinstance(entry, dict):
                    raise ApiError(sm.INVALID_PARAMS, "inventory entries must be objects.", 400)
                warehouse_id = str(entry.get("warehouse_id") or "")
                quantity = entry.get("quantity")
                if warehouse_id not in shop.warehouses:
                    errors.append({"code": sm.WAREHOUSE_NOT_FOUND, "message": f"Warehouse {warehouse_id} not found.",
                                   "detail": {"sku_id": sku_id, "warehouse_id": warehouse_id}})
                    continue
                if isinstance(quantity, bool) or not isinstance(quantity, int) or not 0 <= quantity <= 999999:
                    errors.append({"code": sm.INVALID_QUANTITY, "message": "quantity must be an integer 0..999999.",
                                   "detail": {"sku_id": sku_id, "warehouse_id": warehouse_id}})
                    continue
                row = rows.get((sku_id, warehouse_id))
                if row is None:
                    SandboxInventory.objects.create(shop=shop, product_id=product_id, sku_id=sku_id,
                                                    warehouse_id=warehouse_id, quantity=quantity)
                elif row.quantity != quantity:
                    row.quantity = quantity
                    row.save(update_fields=["quantity"])
    return {"errors": errors} if errors else {}


def cancellations_search(request, app, shop, **kw):
    _json_body(request)
    return {"cancellations": [], "total_count": 0, "next_page_token": ""}


R = r"(?P<return_id>[0-9A-Za-z_-]+)"
ROUTES = [
    ("GET", r"/authorization/202309/shops", shops_list, False),
    ("POST", r"/return_refund/202309/returns/search", returns_search, True),
    ("GET", rf"/return_refund/202309/returns/{R}/records", return_records, True),
    ("POST", rf"/return_refund/202309/returns/{R}/approve", return_approve, True),
    ("POST", rf"/return_refund/202309/returns/{R}/reject", return_reject, True),
    ("POST", r"/return_refund/202309/cancellations/search", cancellations_search, True),
    ("GET", r"/return_refund/202309/reject_reasons", reject_reasons, True),
    ("GET", r"/order/202309/orders", orders_get, True),
    ("POST", r"/product/202309/inventory/search", inventory_search, True),
    ("POST", r"/product/202309/products/(?P<product_id>[0-9A-Za-z_-]+)/inventory/update", inventory_update, True),
]
ROUTES = [(m, re.compile(p + r"\Z"), h, s) for m, p, h, s in ROUTES]


@csrf_exempt
@login_not_required
def open_api(request, api_path: str):
    signed_path = "/" + api_path
    match = None
    for method, pattern, handler, shop_scoped in ROUTES:
        m = pattern.match(signed_path)
        if m and method == request.method:
            match = (handler, shop_scoped, m.groupdict())
            break
        if m:
            return envelope(code=sm.INVALID_PARAMS, message=f"Method {request.method} not allowed.", http_status=405)
    if match is None:
        return envelope(code=sm.INVALID_PARAMS, message=f"Unknown API path {signed_path}.", http_status=404)
    handler, shop_scoped, kwargs = match
    try:
        app, shop = _authenticate(request, signed_path, shop_scoped=shop_scoped)
        fault = api.api_call_fault(app)
        if fault:
            status, code, message = fault
            return envelope(code=code, message=message, http_status=status)
        result = handler(request, app, shop, **kwargs)
        delay = api.answer_delay(app)
        if delay:
            time.sleep(delay)  # applied; the answer comes too late for a short read timeout
    except ApiError as exc:
        return envelope(code=exc.code, message=exc.message, http_status=exc.http_status)
    if isinstance(result, tuple):  # a stored (replayable) answer
        response, status = result
        return JsonResponse({**response, "request_id": _request_id()}, status=status)
    return envelope(result)


# --- auth host ------------------------------------------------------------------------------

def _auth_app(request) -> SandboxApp:
    app = SandboxApp.objects.filter(app_key=request.GET.get("app_key") or "").first()
    if app is None or not hmac.compare_digest(app.app_secret, request.GET.get("app_secret") or ""):
        raise ApiError(sm.INVALID_PARAMS, "Invalid app_key or app_secret.", 401)
    return app


@csrf_exempt
@login_not_required
def token_get(request):
    try:
        app = _auth_app(request)
        if request.GET.get("grant_type") != "authorized_code":
            raise ApiError(sm.INVALID_PARAMS, "grant_type must be authorized_code.", 400)
        code = request.GET.get("auth_code") or ""
        with transaction.atomic():
            token = SandboxToken.objects.select_for_update().filter(
                app=app, auth_code=code, auth_code_used=False).exclude(auth_code="").first()
            if token is None:
                raise ApiError(sm.INVALID_REFRESH, "Invalid or used auth_code.", 400)
            token.auth_code_used = True
            token.save(update_fields=["auth_code_used"])
    except ApiError as exc:
        return envelope(code=exc.code, message=exc.message, http_status=exc.http_status)
    return envelope(api.token_data(app, token))


@csrf_exempt
@login_not_required
def token_refresh(request):
    try:
        app = _auth_app(request)
        if request.GET.get("grant_type") != "refresh_token":
            raise ApiError(sm.INVALID_PARAMS, "grant_type must be refresh_token.", 400)
        old = SandboxToken.objects.filter(app=app, refresh_token=request.GET.get("refresh_token") or "",
                                          revoked=False).first()
        if old is None or old.refresh_token_expires_at <= api.now_ts():
            raise ApiError(sm.INVALID_REFRESH, "Invalid or expired refresh_token.", 400)
        # TikTok keeps the refresh token and issues a new access token.
        with transaction.atomic():
            token = api.issue_tokens(app)
            token.refresh_token, token.refresh_token_expires_at = old.refresh_token, old.refresh_token_expires_at
            old.refresh_token = "old_" + secrets.token_urlsafe(24)  # the pair moves to the new row
            old.save(update_fields=["refresh_token"])
            token.save(update_fields=["refresh_token", "refresh_token_expires_at"])
    except ApiError as exc:
        return envelope(code=exc.code, message=exc.message, http_status=exc.http_status)
    return envelope(api.token_data(app, token))
