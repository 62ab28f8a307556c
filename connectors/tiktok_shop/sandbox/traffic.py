"""The TikTok sandbox's hooks for the shared sandbox loop and for the other sandboxes
(``returnsync.registry.SandboxSpec``): one tick of simulated life, webhook delivery, and
what a portal's sandbox needs to know of the simulated marketplace."""
from __future__ import annotations

import logging
import random

from connectors.tiktok_shop.sandbox import api, scenario
from connectors.tiktok_shop.sandbox import state as sm
from connectors.tiktok_shop.sandbox.models import SandboxReturn

log = logging.getLogger(__name__)


def traffic_tick(connection, *, rng: random.Random) -> dict:
    """New orders with returns, and buyers, carriers and the platform moving returns along."""
    return scenario.traffic_tick(connection, rng=rng)


def deliver_webhooks(connection) -> int:
    return api.deliver_webhooks(connection)


def parcel_delivered(connection, return_id: str, tracking_number: str = "") -> None:
    """The carrier delivered the return parcel: TikTok now waits for the seller's receipt
    decision. The buyer shipped with the portal's label, so TikTok shows that tracking."""
    try:
        api.advance_return(connection, return_id, to_status=sm.BUYER_SHIPPED_ITEM,
                           next_actions=[sm.RESPOND_RECEIVE], tracking_number=tracking_number)
    except Exception as exc:  # noqa: BLE001 — not a sandbox TikTok return (or gone): the portal side still moves
        log.info("TikTok sandbox return %s not advanced: %s", return_id, exc)


def catalog(connection) -> dict:
    """The shop's warehouses and the bundles the traffic sells."""
    _, bundles = scenario.build_catalog("traffic", random.Random(0))
    return {
        "warehouses": list(api.get_shop(connection).warehouses),
        "bundles": [{"seller_sku": b["seller_sku"], "name": b["product_name"],
                     "components": [(c["seller_sku"], int(c.get("sku_count") or 1)) for c in b["combined_listing_skus"]]}
                    for b in bundles],
    }


def held_return_ids(connection):
    """Returns of the fault scenario (``connectors.sandbox_faults``): traffic leaves them alone."""
    return SandboxReturn.objects.filter(
        data__return_reason_text__startswith=scenario.FAULT_SCENARIO_REASON).values_list("return_id", flat=True)
