"""Background jobs of the TikTok Shop connector (django-q2). Webhook processing, the poll
and decision write-backs run through the shared jobs (``connectors.tasks``); a stock
adjustment claims its own row, so it has its own task."""
from __future__ import annotations


def inventory_adjustment_task(adjustment_id: int) -> str:
    from connectors.tiktok_shop.services import inventory_adjustment_apply

    return inventory_adjustment_apply(adjustment_id=adjustment_id).status
