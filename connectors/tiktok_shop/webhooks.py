"""TikTok Shop webhooks: what the shared receiver (``connectors.webhooks``) needs to know.

- **authenticate**: header ``Authorization`` = lowercase hex HMAC-SHA256 keyed with the
  app secret over ``app_key + raw body`` (no timestamp, no prefix);
- **parse**: ``type`` (1 ORDER_STATUS_CHANGE, 11 CANCELLATION_STATUS_CHANGE, 12
  RETURN_STATUS_CHANGE; any other type is stored as ignored), the dedupe id
  ``tts_notification_id`` (TikTok retries at +2 min, +30 min, +3 h, +12 h), the subject;
- **process**: the payload only carries ids and a status, so the return (type 12) or the
  order (types 1 and 11) is re-fetched and applied through ``returns_apply_page`` (stale
  data is ignored there). A return announcement no newer than what we hold is skipped
  without a call.
"""
from __future__ import annotations

import json
from datetime import timedelta

from connectors.tiktok_shop.mapping import as_datetime, as_str, webhook_subject
from connectors.tiktok_shop.signing import verify_webhook
from connectors.webhooks import webhook_window
from returnsync.choices import InboundStatus
from returnsync.models import Connection, InboundEvent, MarketplaceReturn
from returnsync.registry import WebhookInfo, WebhookSpec

TYPE_ORDER_STATUS_CHANGE = "1"
TYPE_CANCELLATION_STATUS_CHANGE = "11"
TYPE_RETURN_STATUS_CHANGE = "12"
EVENT_TYPES = {
    TYPE_ORDER_STATUS_CHANGE: "ORDER_STATUS_CHANGE",
    TYPE_CANCELLATION_STATUS_CHANGE: "CANCELLATION_STATUS_CHANGE",
    TYPE_RETURN_STATUS_CHANGE: "RETURN_STATUS_CHANGE",
}


def authenticate(connection: Connection, request, raw: bytes) -> bool:
    creds = connection.credentials or {}
    return verify_webhook(creds.get("app_key", ""), creds.get("app_secret", ""), raw,
                          request.headers.get("Authorization", ""))


def parse(connection: Connection, payload: dict) -> WebhookInfo:
    kind, subject = webhook_subject(payload)
    return WebhookInfo(
        event_type=EVENT_TYPES.get(kind, f"type {kind or '?'}"),
        dedupe_id=as_str(payload.get("tts_notification_id"), 150),
        subject_ref=subject,
        process=kind in EVENT_TYPES,
    )


# TikTok re-delivers at +2 min, +30 min, +3 h and +12 h with the body it first signed:
# a day covers every retry; an older body is a replay.
MAX_AGE_HOURS = 24


def sent_at(connection: Connection, payload: dict):
    """The body's ``timestamp`` (unix seconds): when TikTok sent the notification."""
    return as_datetime(payload.get("timestamp"))


def max_age(connection: Connection) -> timedelta:
    return webhook_window(connection, MAX_AGE_HOURS)


WEBHOOK = WebhookSpec(authenticate=authenticate, parse=parse, ack="success", sent_at=sent_at, max_age=max_age)


def _return_is_current(connection: Connection, data: dict) -> bool:
    """Does our stored return already hold the version this webhook announces (or newer)?
    Then the re-fetch can be skipped: it would be counted stale anyway."""
    announced = as_datetime(data.get("update_time"))
    return_id = as_str(data.get("return_id"))
    if announced is None or not return_id:
        return False
    stored = MarketplaceReturn.objects.filter(
        connection=connection, return_id=return_id
    ).values_list("source_updated_at", flat=True).first()
    return stored is not None and stored >= announced


def process_event(*, event: InboundEvent, client=None) -> str:
    """Re-fetch and apply what one stored TikTok event announces."""
    from connectors.tiktok_shop.sync import order_refetch, return_refetch

    payload = json.loads(bytes(event.body))
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")  # noqa: TRY004 (a bad payload, not a bug)
    kind, _ = webhook_subject(payload)
    data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
    if kind == TYPE_RETURN_STATUS_CHANGE:
        if not as_str(data.get("return_id")):
            raise ValueError("return webhook without return_id")
        if _return_is_current(event.connection, data):
            return InboundStatus.IGNORED  # stale or duplicate announcement
        counts = return_refetch(connection=event.connection, return_id=as_str(data["return_id"]), client=client)
        return InboundStatus.PROCESSED if counts.created or counts.updated else InboundStatus.IGNORED
    if kind in (TYPE_ORDER_STATUS_CHANGE, TYPE_CANCELLATION_STATUS_CHANGE):
        # A cancellation changes the order's status: re-fetching the order records it.
        order_id = as_str(data.get("order_id"))
        if not order_id:
            raise ValueError("order/cancellation webhook without order_id")
        order_refetch(connection=event.connection, order_id=order_id, client=client)
        return InboundStatus.PROCESSED
    return InboundStatus.IGNORED
