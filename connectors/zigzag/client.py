"""ZigZag API client.

One ``ZigZagClient`` per ``Connection`` (``kind="zigzag"``):

- ``connection.base_url``: the API base (real host uncertain, probably
  ``https://api.returns.international``; sandbox: ``{server}/sandbox/zigzag``);
- ``connection.credentials`` (encrypted): ``username``, ``password``, and the cached
  ``token`` / ``token_expires_at`` (unix) this client writes;
- paths come from ``connectors.zigzag.mapping`` (overridable per connection).

Auth: username/password → ``POST /token`` → JWT sent as ``Authorization: Bearer``. The
JWT lives 30 minutes; it is cached on the connection and re-issued
``token_margin_seconds`` before it runs out, and once when a call answers 401.
Retries, backoff, Retry-After, the rate limit and the ``ApiCall`` log come from
``connectors.http.ConnectorHttp``.
"""
from __future__ import annotations

import json
import time
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
from connectors.zigzag import mapping


class ZigZagApiError(ConnectorApiError):
    """A ZigZag call that did not succeed (``code``: ZigZag's ``error`` string)."""

    system = "ZigZag API"


class _ZigZagHttp(ConnectorHttp):
    def interpret(self, response: requests.Response) -> Outcome:
        status = response.status_code
        body = json_object(response)
        ok = 200 <= status < 300
        # A create whose reference exists answers 409 with the existing return: that is done.
        if status == 409 and isinstance(body.get("return"), dict):
            ok = True
        message = "" if ok else str(body.get("message") or body.get("error") or f"HTTP {status}")
        return Outcome(ok=ok, retryable=not ok and (status == 429 or status >= 500), data=body,
                       http_status=status, api_code=str(body.get("error") or "") if not ok else "",
                       message=message, retry_after=retry_after_seconds(response))

    def make_error(self, outcome: Outcome) -> Exception:
        return ZigZagApiError(outcome.message or "no answer", http_status=outcome.http_status,
                              code=outcome.api_code, retryable=outcome.retryable)


class ZigZagClient:
    def __init__(self, connection, **http_kwargs) -> None:
        self.connection = connection
        self.http = _ZigZagHttp(connection, **http_kwargs)
        self.config = mapping.config(connection)

    # ---- auth
    def _url(self, name: str, **params) -> str:
        return self.connection.base_url.rstrip("/") + self.config["paths"][name].format(**params)

    def token(self, *, force: bool = False) -> str:
        creds = self.connection.credentials or {}
        margin = int(self.config["token_margin_seconds"])
        if not force and creds.get("token") and int(creds.get("token_expires_at") or 0) > time.time() + margin:
            return creds["token"]
        if not creds.get("username") or not creds.get("password"):
            raise ZigZagApiError("no username/password stored for this connection")
        body = json.dumps({"username": creds["username"], "password": creds["password"]}).encode()
        outcome = self.http.send(lambda attempt: HttpRequest(
            "POST", self._url("token"), headers={"Content-Type": "application/json"}, body=body))
        data = outcome.data or {}
        token = data.get("token") or data.get("access_token") or data.get("jwt")
        if not token:
            raise ZigZagApiError("token answer without a token", http_status=outcome.http_status)
        ttl = int(data.get("expires_in") or self.config["token_ttl_seconds"])
        self._store_token(str(token), int(time.time()) + ttl)
        return str(token)

    def _store_token(self, token: str, expires_at: int) -> None:
        from returnsync.models import Connection

        creds = {**(self.connection.credentials or {}), "token": token, "token_expires_at": expires_at}
        self.connection.credentials = creds
        stored = Connection.objects.filter(pk=self.connection.pk).first()
        if stored is not None:  # keep whatever else changed meanwhile; only the token is ours
            stored.credentials = {**(stored.credentials or {}), "token": token, "token_expires_at": expires_at}
            stored.save(update_fields=["credentials"])

    def secret_values(self) -> list[str]:
        return self.http.secret_values()

    # ---- calls
    def _call(self, method: str, url: str, *, params: dict | None = None, payload: Any = None) -> dict:
        body = None if payload is None else json.dumps(payload, separators=(",", ":")).encode()
        for renewed in (False, True):
            token = self.token(force=renewed)
            try:
                outcome = self.http.send(lambda attempt, token=token: HttpRequest(
                    method, url, params={k: str(v) for k, v in (params or {}).items()},
                    headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json",
                             "Accept": "application/json"}, body=body))
            except ZigZagApiError as exc:
                if exc.http_status == 401 and not renewed:
                    continue  # expired or revoked JWT: re-issue once
                raise
            return outcome.data or {}
        raise AssertionError("unreachable")

    def create_return(self, payload: dict) -> dict:
        """Create (or, for a known reference, find) a return; returns the return object."""
        data = self._call("POST", self._url("returns"), payload=payload)
        ret = data.get("return") if isinstance(data.get("return"), dict) else data
        if not isinstance(ret, dict) or not ret.get("id"):
            raise ZigZagApiError("create answer without a return id")
        return ret

    def get_return(self, return_id: str) -> dict:
        data = self._call("GET", self._url("return", id=return_id))
        return data.get("return") if isinstance(data.get("return"), dict) else data

    def list_returns(self, *, updated_since: str = "", page: int = 1) -> tuple[list[dict], int | None]:
        params = {"page": page}
        if updated_since:
            params["updated_since"] = updated_since
        data = self._call("GET", self._url("returns"), params=params)
        nxt = data.get("next_page")
        return list(data.get("returns") or []), (int(nxt) if nxt else None)
