"""The proof of issue 4, over real HTTP against both sandboxes: a TikTok return is
mirrored to ZigZag, grading restocks TikTok (component SKUs for a bundle), and a short
receipt is flagged with the partial refund while TikTok's full refund is held (the
received-package decision would release all of it). Duplicated and reordered deliveries
end in the same state."""
from __future__ import annotations

from decimal import Decimal

import pytest

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag.sandbox import api as zigzag_sandbox
from returnsync.choices import Grade, JobStatus, Stage, TimelineKind
from returnsync.models import InventoryAdjustment, PortalReturn, WriteBack
from tests.connectors.zigzag.conftest import pump

pytestmark = [pytest.mark.django_db(transaction=True)]

ORDER_LINES = [
    {"sku_id": "7101", "product_id": "7100", "seller_sku": "TEE", "product_name": "Tee", "sale_price": "20.00",
     "quantity": 2},
    {"sku_id": "7901", "product_id": "7900", "seller_sku": "BUNDLE-1", "product_name": "Bundle",
     "sale_price": "33.33", "combined_listing_skus": [
         {"sku_id": "7201", "sku_count": 1, "product_id": "7200", "seller_sku": "CMP-A"},
         {"sku_id": "7202", "sku_count": 1, "product_id": "7200", "seller_sku": "CMP-B"}]},
]
SKU_IDS = {"TEE": ("7101", "7100"), "CMP-A": ("7201", "7200"), "CMP-B": ("7202", "7200"), "BUNDLE-1": ("7901", "7900")}


def stock(tiktok, warehouse) -> dict[str, int]:
    return {sku: tiktok_sandbox.inventory(tiktok, sku_id)["warehouses"].get(warehouse, 0)
            for sku, (sku_id, _) in SKU_IDS.items()}


@pytest.mark.parametrize("chaos", [False, True], ids=["in-order", "duplicated-and-reordered"])
def test_a_tiktok_return_goes_to_zigzag_and_back(systems, chaos):
    tiktok, zigzag, warehouse = systems
    if chaos:
        tiktok_sandbox.set_faults(tiktok, seed=7, duplicate_webhooks=1.0, reorder_webhooks=True)
        zigzag_sandbox.set_faults(zigzag, seed=7, duplicate_webhooks=1.0, reorder_webhooks=True)
    order = tiktok_sandbox.create_order(tiktok, lines=ORDER_LINES, stock=5)
    before = stock(tiktok, warehouse)

    # 1. The buyer's return is approved on TikTok: ZigZag gets it at once (label for the buyer).
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")
    return_id = ret["return_id"]
    pump(tiktok, zigzag)
    zz = zigzag_sandbox.return_state(zigzag, return_id)
    assert zz["reference"] == return_id and zz["order_reference"] == order["id"]
    assert sorted((i["sku"], i["quantity"]) for i in zz["items"]) == [("CMP-A", 1), ("CMP-B", 1), ("TEE", 2)]
    assert zz["tracking_number"]
    portal = PortalReturn.objects.get(connection=zigzag, return_ref=return_id)
    assert portal.marketplace_return.return_id == return_id and portal.tracking_number == zz["tracking_number"]

    # 2. The parcel reaches the warehouse (TikTok sees it delivered) and is scanned: one tee short.
    tiktok_sandbox.advance_return(tiktok, return_id, to_status="BUYER_SHIPPED_ITEM",
                                  next_actions=["SELLER_RESPOND_RECEIVE_PACKAGE"])
    zigzag_sandbox.ship(zigzag, zz["id"])
    zigzag_sandbox.scan(zigzag, zz["id"], received={"TEE": 1, "CMP-A": 1, "CMP-B": 1})
    if not chaos:  # in order: each event delivered before the next happens
        pump(tiktok, zigzag)
        state = tiktok_sandbox.return_state(tiktok, return_id)
        assert not state["received"] and state["decisions"] == []  # a short scan never releases the refund
        portal.refresh_from_db()
        assert portal.partial_refund_amount == Decimal("53.33")  # 73.33 less the missing 20.00 tee
        assert portal.release_state == "held_short"

    # 3. Grading: the tee and component A are sellable, component B is damaged.
    zigzag_sandbox.grade(zigzag, zz["id"], grades={"TEE": "SELLABLE", "CMP-A": "SELLABLE", "CMP-B": "DAMAGED"})
    pump(tiktok, zigzag)
    if chaos:  # ZigZag re-sends every event (its daily retry): nothing changes
        for row in zigzag_sandbox.ZigZagWebhook.objects.all():
            zigzag_sandbox.redeliver(zigzag, row.event_id)
        pump(tiktok, zigzag)

    state = tiktok_sandbox.return_state(tiktok, return_id)
    assert not state["received"] and state["decisions"] == []  # still held: finance settles the partial refund
    after = stock(tiktok, warehouse)
    assert {sku: after[sku] - before[sku] for sku in after} == {"TEE": 1, "CMP-A": 1, "CMP-B": 0, "BUNDLE-1": 0}
    assert InventoryAdjustment.objects.filter(status=JobStatus.SUCCEEDED).count() == 2

    portal.refresh_from_db()
    lines = {line.sku: line for line in portal.lines.all()}
    assert {sku: (ln.received_quantity, ln.grade) for sku, ln in lines.items()} == {
        "TEE": (1, Grade.SELLABLE), "CMP-A": (1, Grade.SELLABLE), "CMP-B": (1, Grade.DAMAGED)}
    assert portal.stage == Stage.INSPECTED
    # Bundle 33.33 split 0.6/0.4 → 20.00 + 13.33; refund = one tee 20.00 + component A 20.00.
    assert portal.partial_refund_amount == Decimal("40.00")
    detail = {line["sku"]: line for line in portal.partial_refund_detail["lines"]}
    assert detail["CMP-B"]["withheld_amount"] == "13.33" and detail["TEE"]["withheld_amount"] == "20.00"
    assert WriteBack.objects.filter(action="create_portal_return").count() == 1
    assert zigzag_sandbox.ZigZagReturn.objects.count() == 1
    kinds = list(portal.events.values_list("kind", flat=True))
    assert kinds.count(TimelineKind.GRADED) == 3 and kinds.count(TimelineKind.RECEIVED) == 3
    assert kinds.count(TimelineKind.RESTOCK) == 2 and kinds.count(TimelineKind.LABEL_CREATED) == 1
