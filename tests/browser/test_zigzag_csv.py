"""An operations person uploads a warehouse CSV in Chromium and reads the per-row result."""
from __future__ import annotations

import pytest

from returnsync.roles import Role
from tests.factories import (
    DEMO_PASSWORD,
    PortalConnectionFactory,
    PortalReturnFactory,
    PortalReturnLineFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_operations_uploads_a_receipt_csv_and_sees_each_row(page, live_server, tmp_path):
    UserFactory(username="ops", roles=[Role.OPERATIONS])
    connection = PortalConnectionFactory(name="ZigZag UK")
    portal = PortalReturnFactory(connection=connection, external_id="ZZ000777")
    PortalReturnLineFactory(portal_return=portal, line_id="1", sku="MUG", expected_quantity=2, received_quantity=0)
    csv_file = tmp_path / "receipts.csv"
    csv_file.write_text("zigzag_return_id,tiktok_return_id,sku,received_quantity,grade,location\n"
                        "ZZ000777,,MUG,2,SELLABLE,\nZZ000777,,SOCKS,1,,\n")

    page.goto(f"{live_server.url}/accounts/login/")
    page.fill("#id_username", "ops")
    page.fill("#id_password", DEMO_PASSWORD)
    page.get_by_role("button", name="Log in").click()
    page.get_by_role("link", name="Warehouse CSV", exact=True).click()
    assert page.get_by_role("link", name="Download the template").is_visible()
    page.set_input_files("#id_file", str(csv_file))
    page.get_by_role("button", name="Upload and apply").click()
    page.wait_for_load_state()

    assert page.locator("[data-result=summary]").inner_text().startswith("1 row applied, 1 with errors")
    assert page.get_by_text("SOCKS is not an item of ZZ000777").is_visible()
    line = portal.lines.get()
    assert (line.received_quantity, line.grade) == (2, "sellable")
