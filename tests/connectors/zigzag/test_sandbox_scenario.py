"""The demo wiring: seeding is idempotent, and the traffic loop carries a mirrored return
through the warehouse and back to TikTok; the command drives the sandbox by hand."""
from __future__ import annotations

import random

import pytest
from django.core.management import CommandError, call_command

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag.sandbox import api as zigzag_sandbox
from connectors.zigzag.sandbox import scenario
from returnsync.choices import System
from returnsync.models import BundleMapping, Connection, PortalReturn, WarehouseMapping
from tests.connectors.zigzag.conftest import drain, pump

pytestmark = [pytest.mark.django_db(transaction=True)]


def test_seed_is_idempotent_and_traffic_moves_returns_to_graded(live_server):
    tiktok = tiktok_sandbox.connect(name="TikTok Shop (sandbox)", server_url=live_server.url)
    first = scenario.seed(server_url=live_server.url, tiktok_connection_name=tiktok.name)
    again = scenario.seed(server_url=live_server.url, tiktok_connection_name=tiktok.name)
    assert first.pk == again.pk and Connection.objects.filter(kind=System.ZIGZAG).count() == 1
    assert WarehouseMapping.objects.filter(connection=first, is_default=True).count() == 1
    assert BundleMapping.objects.count() == 3
    order = tiktok_sandbox.create_order(tiktok, lines=[{"sku_id": "9101", "product_id": "9100",
                                                        "seller_sku": "HAT", "sale_price": "15.00"}])
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")
    pump(tiktok, first)
    rng = random.Random(5)  # this seed scans the parcel in full and grades it sellable
    for _ in range(3):  # ship, scan, grade
        scenario.traffic_tick(first, rng=rng, advance=10)
        pump(tiktok, first)
    assert zigzag_sandbox.return_state(first, ret["return_id"])["status"] == "Graded"
    assert PortalReturn.objects.get(return_ref=ret["return_id"]).inspected_at is not None
    assert tiktok_sandbox.return_state(tiktok, ret["return_id"])["received"] is True


def test_command_scans_and_grades_by_tiktok_return_id(systems):
    tiktok, zigzag, _ = systems
    order = tiktok_sandbox.create_order(tiktok, lines=[{"sku_id": "9201", "product_id": "9200",
                                                        "seller_sku": "BAG", "sale_price": "40.00"}])
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")
    pump(tiktok, zigzag)
    call_command("zigzag_sandbox", "scan", ret["return_id"], "--received", "BAG=0")
    call_command("zigzag_sandbox", "grade", ret["return_id"], "--grade", "BAG=MISSING")
    drain()
    portal = PortalReturn.objects.get(return_ref=ret["return_id"])
    line = portal.lines.get()
    assert (line.received_quantity, line.grade) == (0, "missing")
    assert str(portal.partial_refund_amount) == "0.00"
    with pytest.raises(CommandError, match="no sandbox ZigZag return"):
        call_command("zigzag_sandbox", "scan", "nope")
    with pytest.raises(CommandError, match="no item"):
        call_command("zigzag_sandbox", "grade", ret["return_id"], "--grade", "SOCKS=SELLABLE")
