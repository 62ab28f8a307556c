"""Polling backstop: read ZigZag returns changed since the watermark and apply them the
same way a webhook is applied (older snapshots ignored)."""
from __future__ import annotations

from datetime import timedelta

from django.utils import timezone

from connectors.zigzag import mapping
from returnsync.models import Connection, SyncCursor, SyncRun

STREAM = "zigzag_returns"
OVERLAP = timedelta(minutes=5)  # re-read a little: clocks differ and pages shift
MAX_PAGES = 200


def poll_returns(*, connection: Connection, run: SyncRun | None = None, client=None) -> SyncRun:
    from connectors.zigzag.services import _client, portal_return_apply

    run = run or SyncRun.objects.create(connection=connection, job="zigzag_poll", stream=STREAM)
    run.status, run.started_at = "running", timezone.now()
    run.save(update_fields=["status", "started_at"])
    cursor, _ = SyncCursor.objects.get_or_create(connection=connection, stream=STREAM)
    since = (cursor.watermark - OVERLAP).isoformat() if cursor.watermark else ""
    counts = {"seen": 0, "created": 0, "updated": 0, "stale": 0, "failed": 0}
    newest = cursor.watermark
    client = client or _client(connection)
    try:
        page = 1
        while page and page <= MAX_PAGES:
            returns, page = client.list_returns(updated_since=since, page=page)
            for data in returns:
                counts["seen"] += 1
                try:
                    snapshot = mapping.return_from_payload(connection, data)
                    _, outcome = portal_return_apply(connection=connection, snapshot=snapshot, source="poll")
                except ValueError:
                    counts["failed"] += 1
                    continue
                counts[outcome] += 1
                if snapshot.updated_at and (newest is None or snapshot.updated_at > newest):
                    newest = snapshot.updated_at
    except Exception as exc:
        run.status, run.error = "failed", f"{type(exc).__name__}: {exc}"[:5000]
    else:
        run.status = "succeeded"
        if newest is not None:
            cursor.watermark = newest
            cursor.save(update_fields=["watermark", "updated_at"])
    run.finished_at, run.counts = timezone.now(), counts
    run.save(update_fields=["status", "error", "finished_at", "counts"])
    return run
