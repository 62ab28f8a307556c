"""ZigZag webhooks: what the shared receiver (``connectors.webhooks``) needs to know.

Authentication (our sandbox speaks it; set the same on the ZigZag side): the URL carries
the connection's unguessable ``webhook_slug`` (``/webhooks/zigzag/<slug>/``) and every
POST carries ``X-ZigZag-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the
connection's webhook_secret>`` (header name configurable: ``options["signature_header"]``;
never stored). A body naming no return is a dead letter; the dedupe id is ``event_id``
(ZigZag re-sends failed webhooks daily for a week).

Processing applies the return snapshot the event carries (or re-fetches it when the
event carries only ids) through ``returnsync.lifecycle.portal_return_apply``: older
snapshots are ignored, so duplicated and reordered deliveries end in the same state.
"""
from __future__ import annotations

import hashlib
import hmac
import json

from connectors.webhooks import webhook_window
from connectors.zigzag import mapping
from returnsync.choices import InboundStatus
from returnsync.models import Connection, InboundEvent
from returnsync.registry import WebhookInfo, WebhookSpec


def webhook_signature(secret: str, body: bytes) -> str:
    return mapping.WEBHOOK_SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    return bool(secret) and bool(header) and hmac.compare_digest(webhook_signature(secret, body), header.strip())


def _signature_header(connection: Connection) -> str:
    return str(mapping.config(connection)["signature_header"])


def authenticate(connection: Connection, request, raw: bytes) -> bool:
    return verify_signature(connection.webhook_secret or "", raw,
                            request.headers.get(_signature_header(connection), ""))


def parse(connection: Connection, payload: dict) -> WebhookInfo:
    event = mapping.event_from_payload(connection, payload)
    return WebhookInfo(event_type=event.name or "event", dedupe_id=event.event_id,
                       subject_ref=(event.reference or event.return_id)[:64])


# ZigZag re-sends a failed webhook daily for a week, with the event's own ``occurred_at``:
# eight days cover every re-send; an older body is a replay.
MAX_AGE_HOURS = 8 * 24


def sent_at(connection: Connection, payload: dict):
    return mapping.event_from_payload(connection, payload).occurred_at


WEBHOOK = WebhookSpec(
    authenticate=authenticate, parse=parse, ack="accepted",
    secret_headers=lambda connection: (mapping.DEFAULTS["signature_header"], _signature_header(connection)),
    sent_at=sent_at, max_age=lambda connection: webhook_window(connection, MAX_AGE_HOURS),
)


def process_event(*, event: InboundEvent, client=None) -> str:
    """Apply the ZigZag return one stored event describes (fetched when it names only ids)."""
    from returnsync.lifecycle import portal_return_apply

    parsed = mapping.event_from_payload(event.connection, json.loads(bytes(event.body)))
    data = parsed.snapshot
    if data is None:
        if not parsed.return_id:
            raise ValueError("event carries no return and no return id to fetch")
        data = client.get_return(parsed.return_id)
    snapshot = mapping.return_from_payload(event.connection, data)
    _, outcome = portal_return_apply(connection=event.connection, snapshot=snapshot, source="webhook",
                                     event_name=parsed.name, occurred_at=parsed.occurred_at)
    return InboundStatus.IGNORED if outcome == "stale" else InboundStatus.PROCESSED
