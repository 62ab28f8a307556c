"""TikTok Shop Open API request signing and webhook verification.

Request signature (API_NOTES): take the query params except ``sign`` and
``access_token``, sort by key, concatenate ``{key}{value}``, prefix the request
path, append the body bytes exactly as sent (skipped for multipart), wrap in
``app_secret`` on both sides, HMAC-SHA256 keyed with ``app_secret``, lowercase hex.

Webhook signature: header ``Authorization`` = lowercase hex HMAC-SHA256 keyed with
``app_secret`` over ``app_key + raw_body``.
"""
from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping

EXCLUDED_PARAMS = frozenset({"sign", "access_token"})


def sign(app_secret: str, path: str, query: Mapping[str, str], body: bytes = b"") -> str:
    params = "".join(f"{key}{query[key]}" for key in sorted(query) if key not in EXCLUDED_PARAMS)
    base = (path + params).encode("utf-8")
    message = app_secret.encode("utf-8") + base + (body or b"") + app_secret.encode("utf-8")
    return hmac.new(app_secret.encode("utf-8"), message, hashlib.sha256).hexdigest()


def webhook_signature(app_key: str, app_secret: str, raw_body: bytes) -> str:
    return hmac.new(app_secret.encode("utf-8"), app_key.encode("utf-8") + raw_body, hashlib.sha256).hexdigest()


def verify_webhook(app_key: str, app_secret: str, raw_body: bytes, authorization: str) -> bool:
    if not (app_key and app_secret and authorization):
        return False
    expected = webhook_signature(app_key, app_secret, raw_body)
    return hmac.compare_digest(expected, authorization.strip().lower())
