"""The one webhook receiver, and the processing of what it stored, for every connector.

``POST /webhooks/<connector slug>/<webhook_slug>/`` (one route per installed connector,
named ``<slug>_webhook``) does as little as possible, so the sender gets its answer well
inside its timeout (TikTok: 3 s):

1. find the enabled connection of that system by its unguessable ``webhook_slug`` (404);
2. refuse a body over ``WEBHOOK_MAX_BYTES`` (413, nothing stored);
3. authenticate with the connector's ``WebhookSpec.authenticate`` (401, nothing stored:
   anyone can POST to a URL);
4. parse: not JSON, not an object, nested deeper than ``WEBHOOK_MAX_DEPTH``, refused by
   the connector's ``parse``, or signed longer ago than the connector's freshness window
   (``WebhookSpec.sent_at`` / ``max_age``: a captured body cannot be replayed for ever) →
   a dead letter an admin can see (``failed``), 400 with the reason;
5. store the raw body and the headers (signatures and cookies dropped) once: the dedupe
   key is the provider's event id (or the body's SHA-256), so a re-delivery is a 200
   ``duplicate`` and is not processed again;
6. acknowledge, and queue the processing: inside the storing transaction when the task
   queue is django-q's ORM broker on the same database (the task commits with the event,
   one commit per webhook, and a worker never sees it first), else once it commits.

An event type the connector does not act on is stored as ``ignored`` and acknowledged.

Processing (``inbound_event_process``) calls the connector's ``process_event`` (which
re-fetches or applies what the event announces; stale data is ignored there, so
duplicated and reordered deliveries converge). A failure makes the event a dead letter
with the error; ``inbound_events_requeue`` (scheduled) and the Retry buttons run it again.
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import threading
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.decorators import login_not_required
from django.core.exceptions import RequestDataTooBig
from django.db import IntegrityError, connections, transaction
from django.db.models import Q
from django.http import HttpRequest, JsonResponse
from django.utils import timezone
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_POST

from returnsync import registry
from returnsync.choices import InboundStatus
from returnsync.models import Connection, InboundEvent

logger = logging.getLogger(__name__)

PROCESS_TASK = "connectors.tasks.process_inbound_event"
# Never stored whatever the system: credentials and cookies (connectors add their signature headers).
DROPPED_HEADERS = frozenset({"authorization", "cookie", "proxy-authorization"})
MALFORMED = "malformed"
WEBHOOK_MAX_BYTES = getattr(settings, "WEBHOOK_MAX_BYTES", 1024 * 1024)
WEBHOOK_MAX_DEPTH = 32
# A sender's clock may run a little ahead of ours; a body "sent" further ahead is refused.
WEBHOOK_FUTURE_SKEW = timedelta(minutes=5)

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


def json_depth(value, limit: int) -> int:
    """How deep ``value`` nests (lists and objects), counting no further than ``limit + 1``."""
    deepest, stack = 0, [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            deepest = max(deepest, depth)
            if deepest > limit:
                return deepest
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return deepest


def parse_json_object(raw: bytes) -> dict:
    """The body as a JSON object, or ``ValueError`` saying why not (bounded nesting)."""
    try:
        payload = json.loads(raw)
    except RecursionError:
        raise ValueError(f"nested deeper than {WEBHOOK_MAX_DEPTH} levels") from None
    # JSONDecodeError and UnicodeDecodeError are ValueErrors: they propagate as they are.
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")
    if json_depth(payload, WEBHOOK_MAX_DEPTH) > WEBHOOK_MAX_DEPTH:
        raise ValueError(f"nested deeper than {WEBHOOK_MAX_DEPTH} levels")
    return payload


WINDOW_OPTION = "webhook_max_age_hours"


def webhook_window(connection: Connection, default_hours: int) -> timedelta:
    """The freshness window of a connection's webhooks: ``options["webhook_max_age_hours"]``
    (1 hour to 90 days), else the connector's default."""
    value = (connection.options or {}).get(WINDOW_OPTION)
    try:
        hours = int(value) if value is not None else default_hours
    except (TypeError, ValueError, OverflowError):
        hours = default_hours
    return timedelta(hours=min(max(hours, 1), 90 * 24))


def _age_text(delta: timedelta) -> str:
    seconds = abs(int(delta.total_seconds()))
    if seconds >= 2 * 86400:
        return f"{seconds // 86400} days"
    if seconds >= 2 * 3600:
        return f"{seconds // 3600} h"
    return f"{seconds // 60} min"


def freshness_error(spec: registry.WebhookSpec, connection: Connection, payload: dict, now) -> str:
    """Why a signed body is outside the connector's freshness window ("" when it is not)."""
    sent = spec.sent_at(connection, payload)
    if sent is None:
        return ""
    age = now - sent
    window = spec.max_age(connection)
    if age > window:
        return f"stale: sent {sent:%Y-%m-%d %H:%M} UTC, {_age_text(age)} ago (window {_age_text(window)})"
    if -age > WEBHOOK_FUTURE_SKEW:
        return f"sent {_age_text(age)} in the future ({sent:%Y-%m-%d %H:%M} UTC)"
    return ""


def _broker_in_event_db() -> bool:
    """Is the task queue django-q's ORM broker on the database that stores the events?"""
    from django_q.conf import Conf

    return bool(Conf.ORM) and not Conf.SYNC and Conf.ORM == InboundEvent.objects.db


def inbound_event_enqueue(*, event_id: int, source: str) -> None:
    """Queue processing of a stored event: inside the current transaction when the queue is
    a table of the same database, else once it commits. A failed enqueue loses nothing:
    the event is stored and ``inbound_events_requeue`` picks it up."""
    found = registry.connector_or_none(source)
    name = f"{found.slug if found else source}-inbound-{event_id}"

    def send() -> None:
        from django_q.tasks import async_task

        try:
            # Inside atomic(): django-q's ORM broker then skips close_old_connections(), which
            # with CONN_MAX_AGE=0 would close and reopen the request's DB connection (a WAL
            # checkpoint on SQLite) on every webhook. A failure rolls back to the savepoint only.
            with transaction.atomic():
                async_task(PROCESS_TASK, event_id, task_name=name)
        except Exception:
            logger.exception("could not enqueue inbound event %s", event_id)

    if _broker_in_event_db() and transaction.get_connection().in_atomic_block:
        send()
    else:
        transaction.on_commit(send)


def _dead_letter(connection: Connection, *, headers: dict, raw: bytes, error: str) -> None:
    digest = hashlib.sha256(raw).hexdigest()
    try:
        with _one_writer(), transaction.atomic():
            InboundEvent.objects.create(
                connection=connection, source=connection.kind, event_type=MALFORMED,
                dedupe_key=f"{connection.pk}:{MALFORMED}:{digest}", headers=headers, body=raw,
                status=InboundStatus.FAILED, error=error[:2000],
            )
    except IntegrityError:
        pass  # the same bad body again: stored once


def _stored_headers(request: HttpRequest, connection: Connection, spec: registry.WebhookSpec) -> dict:
    dropped = DROPPED_HEADERS | {name.lower() for name in spec.secret_headers(connection)}
    return {k: v for k, v in request.headers.items() if k.lower() not in dropped}


@csrf_exempt
@login_not_required
@require_POST
def webhook_receive(request: HttpRequest, webhook_slug: str, kind: str) -> JsonResponse:
    connector = registry.connector(kind)
    spec = connector.webhook
    connection = Connection.objects.filter(webhook_slug=webhook_slug, kind=kind, is_enabled=True).first()
    if connection is None or spec is None:
        return _reply(404, "unknown webhook")
    try:
        declared = int(request.headers.get("Content-Length") or 0)
    except ValueError:
        declared = 0
    if declared > WEBHOOK_MAX_BYTES:
        return _reply(413, f"body over {WEBHOOK_MAX_BYTES} bytes")
    try:
        raw = request.body
    except RequestDataTooBig:
        return _reply(413, f"body over {WEBHOOK_MAX_BYTES} bytes")
    if len(raw) > WEBHOOK_MAX_BYTES:
        return _reply(413, f"body over {WEBHOOK_MAX_BYTES} bytes")
    if not spec.authenticate(connection, request, raw):
        return _reply(401, "invalid signature")

    headers = _stored_headers(request, connection, spec)
    try:
        payload = parse_json_object(raw)
    except ValueError as exc:
        _dead_letter(connection, headers=headers, raw=raw, error=f"malformed JSON: {exc}")
        return _reply(400, "malformed JSON")
    try:
        info = spec.parse(connection, payload)
        stale = freshness_error(spec, connection, payload, timezone.now())
    except (ValueError, OverflowError, RecursionError) as exc:
        _dead_letter(connection, headers=headers, raw=raw, error=f"malformed: {exc}")
        return _reply(400, f"malformed: {exc}"[:300])
    if stale:
        _dead_letter(connection, headers=headers, raw=raw, error=stale)
        return _reply(400, stale[:300])

    dedupe_id = (info.dedupe_id or "")[:150] or f"sha256:{hashlib.sha256(raw).hexdigest()}"
    try:
        with _one_writer(), transaction.atomic():
            event = InboundEvent.objects.create(
                connection=connection, source=connection.kind, event_type=(info.event_type or "event")[:64],
                dedupe_key=f"{connection.pk}:{dedupe_id}", headers=headers, body=raw,
                subject_ref=(info.subject_ref or "")[:64],
                status=InboundStatus.RECEIVED if info.process else InboundStatus.IGNORED,
                processed_at=None if info.process else timezone.now(),
            )
            if info.process:
                inbound_event_enqueue(event_id=event.pk, source=connection.kind)
    except IntegrityError:
        return _reply(200, "duplicate")
    return _reply(200, spec.ack)


def inbound_event_process(*, event_id: int, client=None) -> InboundEvent:
    """Process one stored event through its connector. Safe to call again: processed and
    ignored events are left alone; a failed one (dead letter) is tried again."""
    event = InboundEvent.objects.select_related("connection").get(pk=event_id)
    if event.status in (InboundStatus.PROCESSED, InboundStatus.IGNORED):
        return event
    event.attempts += 1
    status, error = InboundStatus.PROCESSED, ""
    try:
        if event.connection is None:
            raise ValueError("event has no connection")
        connector = registry.connector(event.source)
        if connector.process_event is None:
            raise ValueError(f"{connector.label} events are not processed")
        if client is None and connector.client is not None:
            client = connector.client(event.connection)
        status = connector.process_event(event=event, client=client) or InboundStatus.PROCESSED
    except Exception as exc:
        logger.warning("%s inbound event %s failed: %s", event.source, event_id, exc)
        status, error = InboundStatus.FAILED, f"{type(exc).__name__}: {exc}"[:5000]
    event.status = status
    event.error = error
    event.processed_at = timezone.now()
    event.save(update_fields=["status", "error", "attempts", "processed_at"])
    return event


# How long a stored event may wait for its processing before the sweep queues it again (a
# worker killed mid-task, a task lost with its broker): ``INBOUND_REQUEUE_AFTER_SECONDS``.
REQUEUE_AFTER_SECONDS = int(getattr(settings, "INBOUND_REQUEUE_AFTER_SECONDS", 300))


def inbound_events_requeue(*, older_than_seconds: int = REQUEUE_AFTER_SECONDS, max_attempts: int = 5) -> int:
    """Re-enqueue stored events that never got processed (the enqueue failed, or a worker
    died) and dead letters with attempts left; never a malformed body (schedule this every
    few minutes)."""
    cutoff = timezone.now() - timedelta(seconds=older_than_seconds)
    sources = [c.kind for c in registry.connectors() if c.process_event is not None]
    rows = list(InboundEvent.objects.filter(
        Q(status=InboundStatus.RECEIVED) | Q(status=InboundStatus.FAILED, attempts__lt=max_attempts),
        source__in=sources, received_at__lt=cutoff,
    ).exclude(event_type=MALFORMED).values_list("id", "source")[:500])
    with transaction.atomic():
        for event_id, source in rows:
            inbound_event_enqueue(event_id=event_id, source=source)
    return len(rows)
