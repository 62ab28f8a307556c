"""ZigZag webhook receiver and the processing of what it stored.

Authentication (our sandbox speaks it; set the same on the ZigZag side): the URL carries
the connection's unguessable ``webhook_slug`` (``/webhooks/zigzag/<slug>/``) and every
POST carries ``X-ZigZag-Signature: sha256=<hex HMAC-SHA256 of the raw body keyed with the
connection's webhook_secret>`` (header name configurable: ``options["signature_header"]``).

- bad/missing signature → 401, nothing stored;
- body not a JSON object, or naming no return → dead letter (``failed``), 400;
- a re-delivery (same ``event_id``; ZigZag re-sends failed webhooks daily for a week) →
  200 ``duplicate``, not processed again;
- otherwise stored raw (``InboundEvent``) and processed in the background.

Processing applies the return snapshot the event carries (or re-fetches it when the
event carries only ids) through ``services.portal_return_apply``: older snapshots are
ignored, so duplicated and reordered deliveries end in the same state.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors.zigzag import mapping
from returnsync.choices import InboundStatus, System
from returnsync.models import Connection, InboundEvent

logger = logging.getLogger(__name__)

PROCESS_TASK = "connectors.zigzag.tasks.process_inbound_event"
DROPPED_HEADERS = frozenset({"authorization", "cookie", "x-zigzag-signature"})


def webhook_signature(secret: str, body: bytes) -> str:
    return mapping.WEBHOOK_SIGNATURE_PREFIX + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify_signature(secret: str, body: bytes, header: str) -> bool:
    return bool(secret) and bool(header) and hmac.compare_digest(webhook_signature(secret, body), header.strip())


def _reply(status: int, message: str) -> JsonResponse:
    return JsonResponse({"ok": status == 200, "message": message}, status=status)


def inbound_event_enqueue(*, event_id: int) -> None:
    """Queue processing of one stored ZigZag event (after commit)."""
    def send() -> None:
        from django_q.tasks import async_task

        try:
            with transaction.atomic():
                async_task(PROCESS_TASK, event_id, task_name=f"zigzag-inbound-{event_id}")
        except Exception:  # stored: tasks.inbound_events_requeue picks it up
            logger.exception("could not enqueue ZigZag inbound event %s", event_id)

    transaction.on_commit(send)


@csrf_exempt
@login_not_required
@require_POST
def zigzag_webhook(request: HttpRequest, webhook_slug: str) -> JsonResponse:
    connection = Connection.objects.filter(webhook_slug=webhook_slug, kind=System.ZIGZAG, is_enabled=True).first()
    if connection is None:
        return _reply(404, "unknown webhook")
    raw = request.body
    header = request.headers.get(mapping.config(connection)["signature_header"], "")
    if not verify_signature(connection.webhook_secret or "", raw, header):
        return _reply(401, "invalid signature")
    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED_HEADERS}
    digest = hashlib.sha256(raw).hexdigest()
    try:
        payload = json.loads(raw)
        event = mapping.event_from_payload(connection, payload)
    except ValueError as exc:
        try:
            with transaction.atomic():
                InboundEvent.objects.create(
                    connection=connection, source=System.ZIGZAG, event_type="malformed",
                    dedupe_key=f"{connection.pk}:malformed:{digest}", headers=headers, body=raw,
                    status=InboundStatus.FAILED, error=f"malformed: {exc}"[:2000])
        except IntegrityError:
            pass
        return _reply(400, f"malformed: {exc}")
    try:
        with transaction.atomic():
            stored = InboundEvent.objects.create(
                connection=connection, source=System.ZIGZAG, event_type=(event.name or "event")[:64],
                dedupe_key=f"{connection.pk}:{event.event_id or 'sha256:' + digest}", headers=headers, body=raw,
                subject_ref=(event.reference or event.return_id)[:64],
            )
            inbound_event_enqueue(event_id=stored.pk)
    except IntegrityError:
        return _reply(200, "duplicate")
    return _reply(200, "accepted")


def inbound_event_process(*, event_id: int, client=None) -> InboundEvent:
    """Apply one stored ZigZag event. Processed/ignored events are left alone; a failed one
    (dead letter) is tried again."""
    from connectors.zigzag.services import _client, portal_return_apply

    event = InboundEvent.objects.select_related("connection").get(pk=event_id)
    if event.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED):
        return event
    event.attempts += 1
    status, error = InboundStatus.PROCESSED, ""
    try:
        if event.connection is None:
            raise ValueError("event has no connection")
        parsed = mapping.event_from_payload(event.connection, json.loads(bytes(event.body)))
        data = parsed.snapshot
        if data is None:
            if not parsed.return_id:
                raise ValueError("event carries no return and no return id to fetch")
            data = (client or _client(event.connection)).get_return(parsed.return_id)
        snapshot = mapping.return_from_payload(event.connection, data)
        _, outcome = portal_return_apply(connection=event.connection, snapshot=snapshot, source="webhook",
                                         event_name=parsed.name, occurred_at=parsed.occurred_at)
        if outcome == "stale":
            status = InboundStatus.IGNORED
    except Exception as exc:
        logger.warning("ZigZag inbound event %s failed: %s", event_id, exc)
        status, error = InboundStatus.FAILED, f"{type(exc).__name__}: {exc}"[:5000]
    event.status, event.error, event.processed_at = status, error, timezone.now()
    event.save(update_fields=["status", "error", "attempts", "processed_at"])
    return event
