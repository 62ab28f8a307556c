"""The only way rows are written to a return's timeline."""
from __future__ import annotations

from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from returnsync.models import MarketplaceReturn, PortalReturn, ReturnEvent


def timeline_record(
    *,
    system: str,
    kind: str,
    summary: str,
    marketplace_return: MarketplaceReturn | None = None,
    portal_return: PortalReturn | None = None,
    occurred_at: datetime | None = None,
    data: dict[str, Any] | None = None,
    actor=None,
    dedupe_key: str | None = None,
) -> ReturnEvent | None:
    """Append one event. With a ``dedupe_key``, recording the same fact twice is a no-op
    (returns None the second time), so replayed syncs don't double the timeline."""
    if marketplace_return is None and portal_return is None:
        raise ValueError("a timeline event belongs to a marketplace or a portal return")
    if marketplace_return is not None:
        order_ref, return_ref = marketplace_return.order_ref, marketplace_return.return_id
    else:
        order_ref, return_ref = portal_return.order_ref, portal_return.return_ref
    event = ReturnEvent(
        order_ref=order_ref,
        return_ref=return_ref,
        marketplace_return=marketplace_return,
        portal_return=portal_return,
        system=system,
        kind=kind,
        summary=summary[:300],
        data=data or {},
        occurred_at=occurred_at or timezone.now(),
        actor=actor,
        dedupe_key=dedupe_key,
    )
    if dedupe_key is None:
        event.save()
        return event
    try:
        with transaction.atomic():
            event.save()
    except IntegrityError:
        return None
    return event
