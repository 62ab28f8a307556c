"""The warehouse CSV fallback: per-row validation, same effects as the webhook path,
and an upload repeated changes nothing."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag.sandbox import api as zigzag_sandbox
from returnsync.choices import Grade
from returnsync.models import InventoryAdjustment, PortalReturn, ReturnEvent
from returnsync.roles import Role
from tests.connectors.zigzag.conftest import drain, pump

pytestmark = [pytest.mark.django_db(transaction=True)]


def upload(client, connection, text: str, name: str = "receipts.csv"):
    return client.post(reverse("zigzag_csv_upload"), {
        "connection": connection.pk, "file": SimpleUploadedFile(name, text.encode(), content_type="text/csv")})


def test_template_download_has_the_columns(client_for_role):
    response = client_for_role(Role.OPERATIONS).get(reverse("zigzag_csv_template"))
    assert response.status_code == 200 and response["Content-Type"].startswith("text/csv")
    header = b"".join(response).decode().splitlines()[0]
    assert header == "zigzag_return_id,tiktok_return_id,sku,received_quantity,grade,location"


def test_rows_are_validated_one_by_one_and_valid_ones_apply_like_a_webhook(systems, client_for_role):
    tiktok, zigzag, warehouse = systems
    order = tiktok_sandbox.create_order(tiktok, lines=[
        {"sku_id": "8101", "product_id": "8100", "seller_sku": "MUG", "sale_price": "12.50", "quantity": 2},
        {"sku_id": "8102", "product_id": "8100", "seller_sku": "CUP", "sale_price": "5.00"}], stock=10)
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")
    pump(tiktok, zigzag)
    tiktok_sandbox.advance_return(tiktok, ret["return_id"], to_status="BUYER_SHIPPED_ITEM",
                                  next_actions=["SELLER_RESPOND_RECEIVE_PACKAGE"])
    pump(tiktok, zigzag)
    portal = PortalReturn.objects.get(connection=zigzag)
    csv_text = "\n".join([
        "zigzag_return_id,tiktok_return_id,sku,received_quantity,grade,location",
        f"{portal.external_id},,MUG,1,SELLABLE,ZZ-LDN-1",
        f",{ret['return_id']},CUP,1,damaged,",
        "ZZ-NOPE,,MUG,1,SELLABLE,",
        f"{portal.external_id},,SOCKS,1,SELLABLE,",
        f"{portal.external_id},,MUG,7,,",
        f"{portal.external_id},,CUP,,shiny,",
        f"{portal.external_id},,CUP,,,",
        f"{portal.external_id},,MUG,2,,",
    ])
    client = client_for_role(Role.OPERATIONS)
    response = upload(client, zigzag, csv_text)
    assert response.status_code == 200
    page = response.content.decode()
    assert "2 rows applied, 6 with errors" in page
    for reason in ("no ZigZag return ZZ-NOPE", "SOCKS is not an item of", "from 0 to 2",
                   "unknown grade &#x27;shiny&#x27;", "nothing to apply", "appears twice in this file"):
        assert reason in page
    lines = {ln.sku: ln for ln in portal.lines.all()}
    assert (lines["MUG"].received_quantity, lines["MUG"].grade) == (1, Grade.SELLABLE)
    assert (lines["CUP"].received_quantity, lines["CUP"].grade) == (1, Grade.DAMAGED)
    drain()  # the same follow-ups as a webhook: the refund gate and the restock
    # One mug short and the cup damaged: TikTok's full refund is held, never released.
    assert tiktok_sandbox.return_state(tiktok, ret["return_id"])["decisions"] == []
    assert tiktok_sandbox.inventory(tiktok, "8101")["warehouses"][warehouse] == 11
    portal.refresh_from_db()
    assert str(portal.partial_refund_amount) == "12.50"  # one mug of two back; the cup is damaged
    assert portal.release_state == "held_short"

    events, adjustments = ReturnEvent.objects.count(), InventoryAdjustment.objects.count()
    again = upload(client, zigzag, csv_text)
    assert "uploaded before: nothing changed" in again.content.decode()
    drain()
    assert (ReturnEvent.objects.count(), InventoryAdjustment.objects.count()) == (events, adjustments)
    assert tiktok_sandbox.inventory(tiktok, "8101")["warehouses"][warehouse] == 11
    assert zigzag_sandbox.ZigZagReturn.objects.count() == 1


@pytest.mark.parametrize("content", [b"\xff\xfe\x00garbage", b"order,thing\n1,2\n", b"sku,zigzag_return_id\n"])
def test_a_file_that_is_not_the_template_is_refused_with_a_message(systems, client_for_role, content):
    _, zigzag, _ = systems
    response = client_for_role(Role.OPERATIONS).post(reverse("zigzag_csv_upload"), {
        "connection": zigzag.pk, "file": SimpleUploadedFile("x.csv", content, content_type="text/csv")})
    assert response.status_code == 400
    assert any(m in response.content.decode() for m in ("not UTF-8", "header must name", "no rows"))
