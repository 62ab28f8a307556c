"""TikTok Shop Open API client (versions 202309+).

One ``TikTokClient`` per ``Connection`` (``kind="tiktok_shop"``):

- ``connection.base_url`` is the Open API base (real: https://open-api.tiktokglobalshop.com,
  sandbox: ``{server}/sandbox/tiktok``); the signed path is the API path only, so a base
  with a path prefix signs exactly like the real host.
- ``connection.options["auth_base_url"]`` is the token host (default
  https://auth.tiktok-shops.com); token get/refresh there are *unsigned* GETs.
- ``connection.credentials`` (encrypted at rest): ``app_key``, ``app_secret``,
  ``access_token``, ``access_token_expires_at`` (unix), ``refresh_token``,
  ``refresh_token_expires_at``.
- ``connection.options["shop_cipher"]`` / ``["shop_id"]`` come from ``discover_shops``.

Every Open API call carries ``app_key``, ``timestamp``, ``shop_cipher`` (shop-scoped
calls, i.e. all but ``/authorization/*`` and ``/seller/*``) and ``sign`` over the exact
JSON bytes sent, plus the ``x-tts-access-token`` header. Retries, backoff, the
cross-process rate limit and the ``ApiCall`` log come from ``connectors.http``. The
access token is refreshed when it expires within ``REFRESH_MARGIN`` seconds, and once
when the API answers 105002 (expired token). Success is ``code == 0`` in the body.
"""
from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable
from typing import Any

import requests

from connectors.http import (
    ConnectorApiError,
    ConnectorHttp,
    HttpRequest,
    Outcome,
    json_object,
    retry_after_seconds,
)
from connectors.tiktok_shop.signing import sign

DEFAULT_AUTH_BASE_URL = "https://auth.tiktok-shops.com"
TOKEN_GET_PATH = "/api/v2/token/get"
TOKEN_REFRESH_PATH = "/api/v2/token/refresh"

REFRESH_MARGIN = 600  # refresh an access token that expires within 10 minutes
ORDERS_PER_CALL = 50

# Error codes (API_NOTES).
CODE_OK = 0
CODE_RATE_LIMITED = 36009002
CODE_INTERNAL_ERROR = 36009003
CODE_TIMEOUT = 36009007
CODE_INVALID_PARAMS = 36009004
CODE_INVALID_SIGN = 106001
CODE_TOKEN_EXPIRED = 105002
CODE_MISSING_SCOPE = 105005
CODE_ALREADY_APPROVED = 25020010
CODE_ALREADY_RECEIVED = 25020011
CODE_CANNOT_APPROVE_RECEIVE = 25011013

# Codes worth another attempt after a pause; any other non-zero code is final.
# A connection can add codes via ``options["retry_codes"]``.
RETRYABLE_CODES = frozenset({CODE_RATE_LIMITED, CODE_INTERNAL_ERROR, CODE_TIMEOUT})


class TikTokApiError(ConnectorApiError):
    """A TikTok call that did not succeed (``code``: TikTok's body code, an int)."""

    system = "TikTok API"


def _int(value: Any) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


class _TikTokHttp(ConnectorHttp):
    """Reads TikTok envelopes: success is ``code == 0``, whatever the HTTP status."""

    def __init__(self, connection, *, retry_codes: Iterable[int] = (), **kwargs) -> None:
        super().__init__(connection, **kwargs)
        self.retry_codes = RETRYABLE_CODES | {c for c in (_int(x) for x in retry_codes) if c is not None}

    def interpret(self, response: requests.Response) -> Outcome:
        status = response.status_code
        body = json_object(response)
        code = _int(body.get("code"))
        request_id = str(body.get("request_id") or response.headers.get("x-tt-logid") or "")
        retry_after = retry_after_seconds(response)
        ok = 200 <= status < 300 and code == CODE_OK
        retryable = not ok and (status == 429 or status >= 500 or code in self.retry_codes)
        message = str(body.get("message") or "") if not ok else ""
        if not ok and not message:
            message = f"HTTP {status}" if code is None else f"code {code}"
        return Outcome(
            ok=ok,
            retryable=retryable,
            data=body.get("data") if ok else body,
            http_status=status,
            api_code="" if code is None else str(code),
            message=message,
            request_id=request_id,
            retry_after=retry_after,
        )

    def make_error(self, outcome: Outcome) -> TikTokApiError:
        return TikTokApiError(
            outcome.message or "TikTok API error",
            code=_int(outcome.api_code),
            http_status=outcome.http_status,
            request_id=outcome.request_id,
            retryable=outcome.retryable,
        )


class TikTokClient:
    def __init__(
        self,
        connection,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.time,
        **http_options: Any,
    ) -> None:
        self.connection = connection
        self.clock = clock
        self.http = _TikTokHttp(
            connection,
            session=session,
            sleep=sleep,
            retry_codes=(connection.options or {}).get("retry_codes", ()),
            **http_options,
        )

    # ------------------------------------------------------------------ settings
    @property
    def credentials(self) -> dict:
        return dict(self.connection.credentials or {})

    @property
    def options(self) -> dict:
        return dict(self.connection.options or {})

    @property
    def base_url(self) -> str:
        return self.connection.base_url.rstrip("/")

    @property
    def auth_base_url(self) -> str:
        return (self.options.get("auth_base_url") or DEFAULT_AUTH_BASE_URL).rstrip("/")

    def _app(self) -> tuple[str, str]:
        creds = self.credentials
        app_key, app_secret = creds.get("app_key") or "", creds.get("app_secret") or ""
        if not (app_key and app_secret):
            raise TikTokApiError("connection has no app_key/app_secret", retryable=False)
        return app_key, app_secret

    # ------------------------------------------------------------------ tokens
    def exchange_auth_code(self, auth_code: str) -> None:
        """Swap a seller's authorization code for tokens and store them (encrypted)."""
        app_key, app_secret = self._app()
        data = self._token_call(
            TOKEN_GET_PATH,
            {"app_key": app_key, "app_secret": app_secret, "auth_code": auth_code,
             "grant_type": "authorized_code"},
        )
        self._store_tokens(data)

    def refresh_access_token(self) -> None:
        """Get a new access token with the refresh token and store both (encrypted)."""
        app_key, app_secret = self._app()
        creds = self.credentials
        refresh_token = creds.get("refresh_token") or ""
        if not refresh_token:
            raise TikTokApiError("no refresh token: authorise the shop again", retryable=False)
        expires = _int(creds.get("refresh_token_expires_at"))
        if expires and expires <= self.clock():
            raise TikTokApiError("refresh token expired: authorise the shop again", retryable=False)
        data = self._token_call(
            TOKEN_REFRESH_PATH,
            {"app_key": app_key, "app_secret": app_secret, "refresh_token": refresh_token,
             "grant_type": "refresh_token"},
        )
        self._store_tokens(data)

    def _token_call(self, path: str, params: dict[str, str]) -> dict:
        url = self.auth_base_url + path
        outcome = self.http.send(lambda attempt: HttpRequest("GET", url, params=dict(params)))
        data = outcome.data or {}
        if not data.get("access_token"):
            raise TikTokApiError("token response holds no access_token", retryable=False)
        return data

    def _store_tokens(self, data: dict) -> None:
        creds = self.credentials
        creds["access_token"] = data["access_token"]
        creds["access_token_expires_at"] = _int(data.get("access_token_expire_in")) or 0
        if data.get("refresh_token"):
            creds["refresh_token"] = data["refresh_token"]
            creds["refresh_token_expires_at"] = _int(data.get("refresh_token_expire_in")) or 0
        options = self.options
        for key in ("open_id", "seller_name"):
            if data.get(key):
                options[key] = data[key]
        if data.get("granted_scopes"):
            options["granted_scopes"] = list(data["granted_scopes"])
        self.connection.credentials = creds
        self.connection.options = options
        self.connection.save(update_fields=["credentials", "options", "updated_at"])

    def _token_is_fresh(self, creds: dict) -> bool:
        if not creds.get("access_token"):
            return False
        expires = _int(creds.get("access_token_expires_at"))
        return not expires or expires - self.clock() > REFRESH_MARGIN

    def _ensure_token(self, *, stale_token: str | None = None) -> None:
        """Refresh unless another worker already did (re-read the stored credentials first).

        Without ``stale_token``: refresh when the token expires within ``REFRESH_MARGIN``.
        With it (the API said 105002 for that token): refresh unless the stored token is
        already a different, fresh one.
        """
        creds = self.credentials
        if stale_token is None and self._token_is_fresh(creds):
            return
        if self.connection.pk:
            self.connection.refresh_from_db(fields=["credentials"])
            creds = self.credentials
            if self._token_is_fresh(creds) and creds.get("access_token") != stale_token:
                return
        self.refresh_access_token()

    # ------------------------------------------------------------------ calls
    def _call(self, method: str, path: str, *, query: dict | None = None, body: Any = None,
              shop_scoped: bool | None = None) -> dict:
        """One Open API call (with retries); returns the envelope's ``data``."""
        self._ensure_token()
        used = self.credentials.get("access_token", "")
        try:
            return self._send(method, path, query=query, body=body, shop_scoped=shop_scoped)
        except TikTokApiError as exc:
            if exc.code != CODE_TOKEN_EXPIRED:
                raise
        self._ensure_token(stale_token=used)  # expired early: refresh once, then one more go
        return self._send(method, path, query=query, body=body, shop_scoped=shop_scoped)

    def _send(self, method: str, path: str, *, query: dict | None, body: Any,
              shop_scoped: bool | None) -> dict:
        app_key, app_secret = self._app()
        if shop_scoped is None:
            shop_scoped = not path.startswith(("/authorization/", "/seller/"))
        shop_cipher = self.options.get("shop_cipher") or ""
        if shop_scoped and not shop_cipher:
            raise TikTokApiError("connection has no shop_cipher: discover the shop first", retryable=False)
        body_bytes = b"" if body is None else json.dumps(body, separators=(",", ":")).encode("utf-8")
        url = self.base_url + path

        def build(attempt: int) -> HttpRequest:
            params = {k: str(v) for k, v in (query or {}).items() if v is not None}
            params["app_key"] = app_key
            params["timestamp"] = str(int(self.clock()))
            if shop_scoped:
                params["shop_cipher"] = shop_cipher
            params["sign"] = sign(app_secret, path, params, body_bytes)
            headers = {
                "Content-Type": "application/json",
                "x-tts-access-token": self.credentials.get("access_token", ""),
            }
            return HttpRequest(method, url, params=params, headers=headers,
                               body=body_bytes if body is not None else None)

        outcome = self.http.send(build)
        return outcome.data if isinstance(outcome.data, dict) else {}

    # ------------------------------------------------------------------ API
    def discover_shops(self) -> list[dict]:
        """List the authorised shops and store the cipher/id of ours (or the first)."""
        data = self._call("GET", "/authorization/202309/shops", shop_scoped=False)
        shops = list(data.get("shops") or [])
        if shops:
            wanted = self.options.get("shop_id")
            shop = next((s for s in shops if wanted and str(s.get("id")) == str(wanted)), shops[0])
            options = self.options
            options["shop_cipher"] = shop.get("cipher", "")
            options["shop_id"] = str(shop.get("id", ""))
            if shop.get("name"):
                options["shop_name"] = shop["name"]
            if shop.get("region"):
                options["shop_region"] = shop["region"]
            self.connection.options = options
            self.connection.save(update_fields=["options", "updated_at"])
        return shops

    def search_returns(self, *, filters: dict, page_size: int = 50, page_token: str | None = None,
                       sort_field: str = "update_time", sort_order: str = "ASC") -> dict:
        query = {"page_size": max(10, min(50, int(page_size))), "sort_field": sort_field,
                 "sort_order": sort_order}
        if page_token:
            query["page_token"] = page_token
        return self._call("POST", "/return_refund/202309/returns/search", query=query,
                          body=dict(filters or {}))

    def get_return_records(self, return_id: str) -> dict:
        return self._call("GET", f"/return_refund/202309/returns/{return_id}/records")

    def get_orders(self, order_ids: list[str]) -> list[dict]:
        orders: list[dict] = []
        ids = list(dict.fromkeys(str(i) for i in order_ids if i))
        for start in range(0, len(ids), ORDERS_PER_CALL):
            chunk = ids[start:start + ORDERS_PER_CALL]
            data = self._call("GET", "/order/202309/orders", query={"ids": ",".join(chunk)})
            orders.extend(data.get("orders") or [])
        return orders

    def approve_return(self, return_id: str, *, decision: str, idempotency_key: str,
                       partial_refund: dict | None = None) -> dict:
        body: dict[str, Any] = {"decision": decision}
        if partial_refund:
            body["partial_refund"] = partial_refund
        return self._call("POST", f"/return_refund/202309/returns/{return_id}/approve",
                          query={"idempotency_key": idempotency_key}, body=body)

    def reject_return(self, return_id: str, *, decision: str, idempotency_key: str,
                      reject_reason: str = "", comment: str = "") -> dict:
        body: dict[str, Any] = {"decision": decision}
        if reject_reason:
            body["reject_reason"] = reject_reason
        if comment:
            body["comment"] = comment
        return self._call("POST", f"/return_refund/202309/returns/{return_id}/reject",
                          query={"idempotency_key": idempotency_key}, body=body)

    def reject_reasons(self, return_id: str) -> list[dict]:
        """The reasons TikTok accepts for rejecting this request now: ``[{name, text}]``."""
        data = self._call("GET", "/return_refund/202309/reject_reasons",
                          query={"return_or_cancel_id": return_id}) or {}
        return [r for r in (data.get("reasons") or []) if isinstance(r, dict) and r.get("name")]

    def search_inventory(self, *, sku_ids: list[str]) -> list[dict]:
        data = self._call("POST", "/product/202309/inventory/search",
                          body={"sku_ids": [str(s) for s in sku_ids]})
        return list(data.get("inventory") or [])

    def update_inventory(self, product_id: str, skus: list[dict]) -> dict:
        return self._call("POST", f"/product/202309/products/{product_id}/inventory/update",
                          body={"skus": skus})
