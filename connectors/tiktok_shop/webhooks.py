"""TikTok Shop webhook receiver and the processing of what it stored.

Receiving (``tiktok_webhook``) does as little as possible, so TikTok gets its 200 well
inside 3 s: find the connection by its unguessable slug, verify the ``Authorization``
signature (HMAC-SHA256 keyed with the app secret over ``app_key + raw body``), store
the raw event once (``InboundEvent``, deduped on ``tts_notification_id``), answer, and
enqueue ``connectors.tiktok_shop.tasks.process_inbound_event`` (in the same transaction
with django-q's ORM broker on the same database, after commit with any other broker).

- bad/missing signature → 401 and nothing stored (anyone can POST to a URL);
- valid signature, body not a JSON object → stored as a dead letter (``failed``), 400;
- a re-delivery of a stored notification → 200 ``duplicate``, not processed again;
- an unknown ``type`` → stored as ``ignored`` and acknowledged: not an error.

Processing (``inbound_event_process``) treats the webhook as a trigger: the payload only
carries ids and a status, so the return (type 12) or order (types 1 and 11) is
re-fetched and applied through ``returns_apply_page`` — stale data is ignored there, so
duplicated and out-of-order webhooks converge on the newest state.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading

from django.contrib.auth.decorators import login_not_required
from django.db import IntegrityError, connections, transaction
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from connectors.tiktok_shop.mapping import as_datetime, as_str, webhook_subject
from connectors.tiktok_shop.signing import verify_webhook
from returnsync.choices import InboundStatus, System
from returnsync.models import Connection, InboundEvent, MarketplaceReturn

logger = logging.getLogger(__name__)

TYPE_ORDER_STATUS_CHANGE = "1"
TYPE_CANCELLATION_STATUS_CHANGE = "11"
TYPE_RETURN_STATUS_CHANGE = "12"
EVENT_TYPES = {
    TYPE_ORDER_STATUS_CHANGE: "ORDER_STATUS_CHANGE",
    TYPE_CANCELLATION_STATUS_CHANGE: "CANCELLATION_STATUS_CHANGE",
    TYPE_RETURN_STATUS_CHANGE: "RETURN_STATUS_CHANGE",
}
PROCESS_TASK = "connectors.tiktok_shop.tasks.process_inbound_event"
# Never stored: the signature (a replayable credential for this body) and cookies.
DROPPED_HEADERS = frozenset({"authorization", "cookie"})


# SQLite has one writer at a time, and a blocked writer polls with growing sleeps (1 ms up
# to 100 ms) until the lock frees: under a burst of webhooks that is the p99. Writers in
# this process queue on a plain lock instead (woken the moment it is released).
# PostgreSQL needs none of this.
_SQLITE_WRITE_LOCK = threading.Lock()


def _one_writer():
    if connections[InboundEvent.objects.db].vendor == "sqlite":
        return _SQLITE_WRITE_LOCK
    return contextlib.nullcontext()


def _reply(status: int, message: str) -> JsonResponse:
    return JsonResponse({"code": 0 if status == 200 else status, "message": message}, status=status)


def _broker_in_event_db() -> bool:
    """Is the task queue django-q's ORM broker on the database that stores the events?"""
    from django_q.conf import Conf

    return bool(Conf.ORM) and not Conf.SYNC and Conf.ORM == InboundEvent.objects.db


def inbound_event_enqueue(*, event_id: int) -> None:
    """Queue processing of a stored event: inside the transaction that stores it when the
    queue is a table of the same database, else in ``transaction.on_commit``."""
    from django_q.tasks import async_task

    try:
        # Inside atomic(): django-q's ORM broker then skips close_old_connections(), which
        # with CONN_MAX_AGE=0 would close and reopen the request's DB connection (a WAL
        # checkpoint on SQLite) on every webhook.
        with transaction.atomic():
            async_task(PROCESS_TASK, event_id, task_name=f"tiktok-inbound-{event_id}")
    except Exception:  # the event is stored: tasks.inbound_events_requeue picks it up later
        logger.exception("could not enqueue inbound event %s", event_id)


@csrf_exempt
@login_not_required
@require_POST
def tiktok_webhook(request: HttpRequest, webhook_slug: str) -> JsonResponse:
    connection = (
        Connection.objects.filter(webhook_slug=webhook_slug, kind=System.TIKTOK_SHOP, is_enabled=True)
        .only("id", "credentials").first()
    )
    if connection is None:
        return _reply(404, "unknown webhook")
    creds = connection.credentials or {}
    raw = request.body
    if not verify_webhook(creds.get("app_key", ""), creds.get("app_secret", ""), raw,
                          request.headers.get("Authorization", "")):
        return _reply(401, "invalid signature")

    headers = {k: v for k, v in request.headers.items() if k.lower() not in DROPPED_HEADERS}
    try:
        payload = json.loads(raw)
        if not isinstance(payload, dict):
            raise ValueError("body is not a JSON object")
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError are ValueErrors
        digest = hashlib.sha256(raw).hexdigest()
        try:
            with transaction.atomic():
                InboundEvent.objects.create(
                    connection=connection, source=System.TIKTOK_SHOP, event_type="malformed",
                    dedupe_key=f"{connection.pk}:malformed:{digest}", headers=headers, body=raw,
                    status=InboundStatus.FAILED, error=f"malformed JSON: {exc}"[:2000],
                )
        except IntegrityError:
            pass
        return _reply(400, "malformed JSON")

    kind, subject = webhook_subject(payload)
    notification_id = as_str(payload.get("tts_notification_id"), 150) or f"sha256:{hashlib.sha256(raw).hexdigest()}"
    known = kind in EVENT_TYPES
    try:
        with _one_writer(), transaction.atomic():
            event = InboundEvent.objects.create(
                connection=connection, source=System.TIKTOK_SHOP,
                event_type=EVENT_TYPES.get(kind, f"type {kind or '?'}")[:64],
                dedupe_key=f"{connection.pk}:{notification_id}", headers=headers, body=raw,
                subject_ref=subject,
                status=InboundStatus.RECEIVED if known else InboundStatus.IGNORED,
                processed_at=None if known else timezone.now(),
            )
            if known and _broker_in_event_db():
                # The task row is a row of this database: written in this transaction, it
                # commits (or not) with the event. One commit per webhook instead of two,
                # and a worker can never see the task before the event. A failed enqueue
                # rolls back to its savepoint only: the event stays stored and
                # tasks.inbound_events_requeue picks it up later.
                inbound_event_enqueue(event_id=event.pk)
            elif known:
                # Another broker (Redis) is not transactional: enqueue once the event row is
                # committed, so the worker finds it.
                transaction.on_commit(lambda: inbound_event_enqueue(event_id=event.pk))
    except IntegrityError:
        return _reply(200, "duplicate")
    return _reply(200, "success")


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


def inbound_event_process(*, event_id: int, client=None) -> InboundEvent:
    """Process one stored TikTok event. Safe to call again: processed and ignored events
    are left alone; a failed one (dead letter) is retried."""
    from connectors.tiktok_shop.sync import order_refetch, return_refetch

    event = InboundEvent.objects.select_related("connection").get(pk=event_id)
    if event.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED):
        return event
    event.attempts += 1
    status, error = InboundStatus.PROCESSED, ""
    try:
        if event.connection is None:
            raise ValueError("event has no connection")
        payload = json.loads(bytes(event.body))
        if not isinstance(payload, dict):
            raise ValueError("body is not a JSON object")
        kind, _ = webhook_subject(payload)
        data = payload.get("data") if isinstance(payload.get("data"), dict) else {}
        if kind == TYPE_RETURN_STATUS_CHANGE:
            if not as_str(data.get("return_id")):
                raise ValueError("return webhook without return_id")
            if _return_is_current(event.connection, data):
                status = InboundStatus.IGNORED  # stale or duplicate announcement
            else:
                counts = return_refetch(connection=event.connection, return_id=as_str(data["return_id"]),
                                        client=client)
                if not (counts.created or counts.updated):
                    status = InboundStatus.IGNORED
        elif kind in (TYPE_ORDER_STATUS_CHANGE, TYPE_CANCELLATION_STATUS_CHANGE):
            # A cancellation changes the order's status: re-fetching the order records it.
            order_id = as_str(data.get("order_id"))
            if not order_id:
                raise ValueError("order/cancellation webhook without order_id")
            order_refetch(connection=event.connection, order_id=order_id, client=client)
        else:
            status = InboundStatus.IGNORED
    except Exception as exc:
        logger.warning("TikTok inbound event %s failed: %s", event_id, exc)
        status, error = InboundStatus.FAILED, f"{type(exc).__name__}: {exc}"[:5000]
    event.status = status
    event.error = error
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "attempts", "processed_at"])
    return event
