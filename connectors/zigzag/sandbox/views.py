"""The fake ZigZag API over HTTP (mounted at ``/sandbox/zigzag/`` when SANDBOX_ENABLED).

    POST /token                  {"username", "password"} → {"token", "expires_in": 1800}
    POST /returns                create; a known ``reference`` → 409 + {"return": existing}
    GET  /returns?updated_since=&page=   → {"returns": [...], "next_page": n|null}
    GET  /returns/<id>           → {"return": {...}}

Errors are ``{"error": code, "message": text}`` with a 4xx/5xx status; 429 carries
``Retry-After``.
"""
from __future__ import annotations

import json

from django.contrib.auth.decorators import login_not_required
from django.http import HttpRequest, JsonResponse
from django.utils.dateparse import parse_datetime
from django.views.decorators.csrf import csrf_exempt

from connectors.zigzag.sandbox import api
from connectors.zigzag.sandbox.models import ZigZagAccount, ZigZagReturn


def _error(status: int, error: str, message: str) -> JsonResponse:
    response = JsonResponse({"error": error, "message": message}, status=status)
    if status == 429:
        response["Retry-After"] = "1"
    return response


def _json(request: HttpRequest) -> dict:
    try:
        data = json.loads(request.body or b"{}")
    except ValueError:
        raise ValueError("body is not JSON") from None
    if not isinstance(data, dict):
        raise ValueError("body is not a JSON object")
    return data


def _fault(account: ZigZagAccount) -> JsonResponse | None:
    fault = api.api_call_fault(account)
    if fault is None:
        return None
    status, error = fault
    return _error(status, error, "Too many requests" if status == 429 else "Service unavailable, retry later")


def _authenticate(request: HttpRequest) -> tuple[ZigZagAccount | None, JsonResponse | None]:
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header.lower().startswith("bearer ") else ""
    account = api.account_for_token(token) if token else None
    if account is None:
        return None, _error(401, "unauthorized", "Missing, invalid or expired token")
    if api.take_fault(account, "expire_tokens_next"):
        api.expire_tokens(account)
        return None, _error(401, "unauthorized", "Token expired")
    return account, _fault(account)


@csrf_exempt
@login_not_required
def token(request: HttpRequest) -> JsonResponse:
    if request.method != "POST":
        return _error(405, "method_not_allowed", "POST only")
    try:
        data = _json(request)
    except ValueError as exc:
        return _error(400, "bad_request", str(exc))
    account = ZigZagAccount.objects.filter(username=str(data.get("username") or "")).first()
    if account is None or account.password != str(data.get("password") or ""):
        return _error(401, "invalid_credentials", "Wrong username or password")
    fault = _fault(account)
    if fault is not None:
        return fault
    value, expires_at = api.issue_token(account)
    return JsonResponse({"token": value, "token_type": "Bearer", "expires_in": api.TOKEN_TTL,
                         "expires_at": expires_at})


@csrf_exempt
@login_not_required
def returns(request: HttpRequest) -> JsonResponse:
    account, problem = _authenticate(request)
    if problem is not None:
        return problem
    if request.method == "GET":
        since_raw = request.GET.get("updated_since", "")
        since = parse_datetime(since_raw) if since_raw else None
        if since_raw and since is None:
            return _error(400, "bad_request", "updated_since is not an ISO date-time")
        try:
            page = int(request.GET.get("page") or 1)
        except ValueError:
            return _error(400, "bad_request", "page must be a number")
        rows, next_page = api.list_returns(account, updated_since=since, page=page)
        return JsonResponse({"returns": rows, "next_page": next_page})
    if request.method != "POST":
        return _error(405, "method_not_allowed", "GET or POST")
    try:
        data = _json(request)
        ret, created = api.create_return(
            account, reference=str(data.get("reference") or ""), order_reference=str(data.get("order_reference") or ""),
            items=data.get("items") or [], currency=str(data.get("currency") or ""),
            customer=data.get("customer") if isinstance(data.get("customer"), dict) else {})
    except ValueError as exc:
        return _error(400, "bad_request", str(exc))
    if not created:
        return JsonResponse({"error": "duplicate_reference", "message": "A return with this reference exists",
                             "return": api.serialize(ret)}, status=409)
    if api.take_fault(account, "drop_create_response"):
        return _error(503, "unavailable", "Service unavailable, retry later")  # created, answer lost
    return JsonResponse({"return": api.serialize(ret)}, status=201)


@csrf_exempt
@login_not_required
def return_detail(request: HttpRequest, return_id: str) -> JsonResponse:
    account, problem = _authenticate(request)
    if problem is not None:
        return problem
    ret = ZigZagReturn.objects.filter(account=account, return_id=return_id).first()
    if ret is None:
        return _error(404, "not_found", f"Return {return_id} not found")
    return JsonResponse({"return": api.serialize(ret)})
