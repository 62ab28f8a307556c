"""Demo wiring and traffic for the ZigZag sandbox.

``seed(server_url=...)`` connects ZigZag to the TikTok sandbox connection (idempotent):
the ZigZag connection, a default warehouse mapping to the TikTok shop's first warehouse,
and bundle mappings for the TikTok sandbox's traffic bundles (price shares by component
price). ``traffic_tick(rng=...)`` plays the buyer, the carrier and the warehouse on
mirrored returns: label → in transit → scanned (sometimes short) → graded (mostly
sellable), telling the TikTok sandbox the parcel arrived, then delivers the webhooks.
"""
from __future__ import annotations

import logging
import random
from decimal import Decimal

from connectors.tiktok_shop.sandbox import api as tiktok_api
from connectors.tiktok_shop.sandbox import scenario as tiktok_scenario
from connectors.tiktok_shop.sandbox import state as tiktok_state
from connectors.tiktok_shop.sandbox.models import SandboxReturn
from connectors.zigzag.sandbox import api
from connectors.zigzag.sandbox.models import ZigZagReturn

log = logging.getLogger(__name__)

DEFAULT_CONNECTION = "ZigZag (sandbox)"
LOCATION = "ZZ-LDN-1"


def seed(*, server_url: str, tiktok_connection_name: str, name: str = DEFAULT_CONNECTION,
         webhook_base_url: str | None = None):
    from returnsync.choices import System
    from returnsync.models import BundleMapping, Connection, WarehouseMapping
    from returnsync.money import allocate
    from returnsync.services import ComponentSpec, bundle_mapping_save

    tiktok = Connection.objects.filter(kind=System.TIKTOK_SHOP, name=tiktok_connection_name).first()
    if tiktok is None:
        raise ValueError(f"no TikTok connection named {tiktok_connection_name!r}: seed the TikTok sandbox first")
    conn = api.connect(name=name, server_url=server_url, webhook_base_url=webhook_base_url,
                       tiktok_connection=tiktok)
    warehouse = tiktok_api.get_shop(tiktok).warehouses[0]
    if not WarehouseMapping.objects.filter(connection=conn, is_default=True).exists():
        WarehouseMapping.objects.update_or_create(
            connection=conn, location_code=LOCATION,
            defaults={"tiktok_warehouse_id": warehouse, "is_default": True, "name": "ZigZag London"})
    _, bundles = tiktok_scenario.build_catalog("traffic", random.Random(0))
    for bundle in bundles:
        if BundleMapping.objects.filter(bundle_sku=bundle["seller_sku"]).exists():
            continue
        comps = bundle["combined_listing_skus"]
        shares = allocate(Decimal(1), [Decimal(1)] * len(comps), quantum=Decimal("0.000001"))
        bundle_mapping_save(bundle_sku=bundle["seller_sku"], name=bundle["product_name"][:200], components=[
            ComponentSpec(c["seller_sku"], int(c.get("sku_count") or 1), share) for c, share in zip(comps, shares)])
    return conn


def _tiktok_parcel_arrived(tiktok_app, return_id: str, tracking_number: str = "") -> None:
    try:  # the buyer shipped with the ZigZag label: TikTok shows the same tracking number
        tiktok_api.advance_return(tiktok_app, return_id, to_status=tiktok_state.BUYER_SHIPPED_ITEM,
                                  next_actions=[tiktok_state.RESPOND_RECEIVE], tracking_number=tracking_number)
    except Exception as exc:  # noqa: BLE001 — not a sandbox TikTok return (or gone): the ZigZag side still moves
        log.info("TikTok sandbox return %s not advanced: %s", return_id, exc)


def traffic_tick(connection, *, rng: random.Random, advance: int = 4) -> dict:
    """Move a few ZigZag returns one step along, then deliver the webhooks."""
    from connectors.zigzag.services import tiktok_connection_for

    account = api.get_account(connection)
    tiktok = tiktok_connection_for(connection)
    moved = 0
    # Returns of the fault scenario (connectors.sandbox_faults) keep the state they were given.
    scenario_returns = SandboxReturn.objects.filter(
        data__return_reason_text__startswith=tiktok_scenario.FAULT_SCENARIO_REASON).values("return_id")
    open_returns = list(ZigZagReturn.objects.filter(account=account).exclude(status=api.GRADED)
                        .exclude(customer__has_key="fault").exclude(reference__in=scenario_returns)
                        .order_by("updated_at")[:40])
    rng.shuffle(open_returns)
    for ret in open_returns[:advance]:
        if ret.status == api.LABEL_CREATED:
            api.ship(account, ret.return_id)
        elif ret.status == api.IN_TRANSIT:
            if tiktok is not None:
                _tiktok_parcel_arrived(tiktok, ret.reference, ret.tracking_number)
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
    return {"advanced": moved, "delivered": api.deliver_webhooks(account)}
