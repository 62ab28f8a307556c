"""A CX agent types a buyer's zip into the home page's search box and lands on the return."""

from __future__ import annotations

import pytest

from returnsync.roles import Role
from tests.browser.test_login import log_in
from tests.factories import (
    DEMO_PASSWORD,
    MarketplaceReturnFactory,
    OrderFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    UserFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_cx_finds_a_return_by_buyer_zip(page, live_server, screenshot):
    UserFactory(username="cx-agent", roles=[Role.CX])
    ret = MarketplaceReturnFactory(
        return_id="4035000000001234",
        order=OrderFactory(buyer_postal_code="94107"),
        raw_status="BUYER_SHIPPED_ITEM",
    )
    PortalReturnFactory(
        marketplace_return=ret,
        raw_status="In transit",
        connection=PortalConnectionFactory(
            options={
                "portal_url_template": "https://brand.example/returns?order={order_id}&zip={zip}"
            }
        ),
    )
    MarketplaceReturnFactory(order=OrderFactory(buyer_postal_code="10001"))

    log_in(page, live_server, "cx-agent", DEMO_PASSWORD)
    page.get_by_placeholder("TikTok order id, return id, tracking number or buyer zip").fill(
        "94107"
    )
    page.get_by_role("button", name="Find return").click()
    page.wait_for_load_state()

    assert page.url.endswith(f"/returns/{ret.pk}/")
    assert page.get_by_role("heading", name="Return 4035000000001234").is_visible()
    assert page.get_by_text("BUYER_SHIPPED_ITEM").first.is_visible()
    link = page.get_by_role("link", name="Return portal: ZigZag ›")
    assert (
        link.get_attribute("href")
        == f"https://brand.example/returns?order={ret.order_ref}&zip=94107"
    )
    screenshot("cx-lookup-return")
