"""Demo wiring and traffic for the ZigZag sandbox.

``seed(server_url=...)`` connects ZigZag to the marketplace sandbox connection
(idempotent): the ZigZag connection, a default warehouse mapping to the shop's first
warehouse, and bundle mappings for the bundles the marketplace's traffic sells (price
shares equal). ``traffic_tick(connection, rng=...)`` plays the buyer, the carrier and the
warehouse on mirrored returns: label → in transit → scanned (sometimes short) → graded
(mostly sellable), telling the marketplace sandbox the parcel arrived. What it knows of
the marketplace comes through the registry (``SandboxSpec`` hooks), never an import.
"""
from __future__ import annotations

import logging
import random
from decimal import Decimal

from connectors.zigzag.sandbox import api
from connectors.zigzag.sandbox.models import ZigZagReturn

log = logging.getLogger(__name__)

DEFAULT_CONNECTION = "ZigZag (sandbox)"
LOCATION = "ZZ-LDN-1"


def seed(*, server_url: str, tiktok_connection_name: str, name: str = DEFAULT_CONNECTION,
         webhook_base_url: str | None = None):
    from returnsync import registry
    from returnsync.models import BundleMapping, Connection, WarehouseMapping
    from returnsync.money import allocate
    from returnsync.registry import ConnectorRole
    from returnsync.services import ComponentSpec, bundle_mapping_save

    marketplace = Connection.objects.filter(kind__in=registry.kinds(role=ConnectorRole.MARKETPLACE),
                                            name=tiktok_connection_name).first()
    if marketplace is None:
        raise ValueError(f"no TikTok connection named {tiktok_connection_name!r}: seed the TikTok sandbox first")
    conn = api.connect(name=name, server_url=server_url, webhook_base_url=webhook_base_url,
                       tiktok_connection=marketplace)
    world = registry.sandbox_of(marketplace).catalog(marketplace)
    if not WarehouseMapping.objects.filter(connection=conn, is_default=True).exists():
        WarehouseMapping.objects.update_or_create(
            connection=conn, location_code=LOCATION,
            defaults={"tiktok_warehouse_id": world["warehouses"][0], "is_default": True, "name": "ZigZag London"})
    for bundle in world["bundles"]:
        if BundleMapping.objects.filter(bundle_sku=bundle["seller_sku"]).exists():
            continue
        comps = bundle["components"]
        shares = allocate(Decimal(1), [Decimal(1)] * len(comps), quantum=Decimal("0.000001"))
        bundle_mapping_save(bundle_sku=bundle["seller_sku"], name=bundle["name"][:200], components=[
            ComponentSpec(sku, quantity, share) for (sku, quantity), share in zip(comps, shares)])
    return conn


def traffic_tick(connection, *, rng: random.Random, advance: int = 4) -> dict:
    """Move a few ZigZag returns one step along."""
    from returnsync import registry
    from returnsync.lifecycle import marketplace_connection_for

    account = api.get_account(connection)
    marketplace = marketplace_connection_for(connection)
    world = registry.sandbox_of(marketplace) if marketplace is not None else None
    held = list(world.held_return_ids(marketplace)) if world is not None and world.held_return_ids else []
    moved = 0
    # Returns of the fault scenario (connectors.sandbox_faults) keep the state they were given.
    open_returns = list(ZigZagReturn.objects.filter(account=account).exclude(status=api.GRADED)
                        .exclude(customer__has_key="fault").exclude(reference__in=held)
                        .order_by("updated_at")[:40])
    rng.shuffle(open_returns)
    for ret in open_returns[:advance]:
        if ret.status == api.LABEL_CREATED:
            api.ship(account, ret.return_id)
        elif ret.status == api.IN_TRANSIT:
            if world is not None and world.parcel_delivered is not None:
                world.parcel_delivered(marketplace, ret.reference, ret.tracking_number)
            received = None
            if rng.random() < 0.25:  # a short parcel: the first item one unit short
                received = {i["id"]: i["quantity"] - (1 if n == 0 else 0) for n, i in enumerate(ret.items)}
            api.scan(account, ret.return_id, received=received, location=LOCATION)
        elif ret.status == api.RECEIVED:
            grades = {i["id"]: ("SELLABLE" if rng.random() < 0.8 else rng.choice(["DAMAGED", "DEFECTIVE"]))
                      for i in ret.items if i["received_quantity"]}
            api.grade(account, ret.return_id, grades=grades)
        else:
            continue
        moved += 1
    return {"advanced": moved}


def deliver_webhooks(connection) -> int:
    return api.deliver_webhooks(api.get_account(connection))
