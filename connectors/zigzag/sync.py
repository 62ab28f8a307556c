"""Polling backstop: read ZigZag returns changed since the watermark and apply them the
same way a webhook is applied (older snapshots ignored). Run by the shared poll task
(``connectors.polling``), which keeps the SyncRun row, the cursor and the health."""
from __future__ import annotations

from django.db import transaction

from connectors.zigzag import mapping
from returnsync.lifecycle import portal_return_apply
from returnsync.models import Connection

STREAM = "zigzag_returns"
MAX_PAGES = 200


def poll_window(*, connection: Connection, window, client) -> dict:
    """Every ZigZag return updated since ``window.since`` (all of them on the first poll),
    page by page, each page committed with the watermark it reached."""
    since = window.since.isoformat() if window.since else ""
    counts = {"seen": 0, "created": 0, "updated": 0, "stale": 0, "failed": 0}
    page = 1
    while page and page <= MAX_PAGES:
        returns, next_page = client.list_returns(updated_since=since, page=page)
        newest = None
        with transaction.atomic():
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
            window.advance(newest)
        page = next_page
    return counts
