"""Home per role (exceptions, breaches, charts) and the CX return lookup and return page."""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus
from returnsync.roles import Role
from tests.factories import (
    MarketplaceReturnFactory,
    OrderFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    RefundFactory,
)
from tests.returnsync.factories_exceptions import ExceptionCaseFactory

pytestmark = pytest.mark.django_db


def kpi(content: str, name: str) -> str:
    marker = f'data-kpi="{name}">'
    start = content.index(marker) + len(marker)
    return content[start : content.index("<", start)].strip()


def test_home_counts_my_claimed_and_my_roles_open_exceptions_and_breaches(
    client_for_role, user_for_role
):
    me = user_for_role(Role.FINANCE)
    ExceptionCaseFactory(owner_role=Role.FINANCE, title="Open for finance")
    ExceptionCaseFactory(
        owner_role=Role.CX, status=ExceptionStatus.CLAIMED, assignee=me, title="Claimed by me"
    )
    ExceptionCaseFactory(owner_role=Role.CX, title="Open for CX only")
    ExceptionCaseFactory(
        owner_role=Role.FINANCE, due_at=timezone.now() - timedelta(hours=1), title="Late one"
    )
    ExceptionCaseFactory(
        owner_role=Role.FINANCE,
        status=ExceptionStatus.RESOLVED,
        title="Done already",
        closed_at=timezone.now(),
    )

    content = client_for_role(Role.FINANCE).get(reverse("home")).content.decode()

    assert kpi(content, "my-exceptions") == "3"
    assert kpi(content, "sla-breaches") == "1"
    for title in ("Open for finance", "Claimed by me", "Late one"):
        assert title in content
    assert "Open for CX only" not in content
    assert "Done already" not in content


def test_home_chart_counts_opened_and_resolved_today(client_for_role):
    ExceptionCaseFactory()
    ExceptionCaseFactory(status=ExceptionStatus.RESOLVED, closed_at=timezone.now())

    response = client_for_role(Role.CX).get(reverse("home"))

    today = response.context["exceptions_chart_rows"][-1]
    assert (today.day, today.opened, today.resolved) == (timezone.localdate(), 2, 1)
    assert "<svg" in response.content.decode()


def test_home_refund_lag_distribution_buckets_received_returns(client_for_role):
    now = timezone.now()
    quick = PortalReturnFactory(received_at=now - timedelta(hours=30))
    RefundFactory(
        marketplace_return=quick.marketplace_return, refunded_at=now - timedelta(hours=20)
    )
    PortalReturnFactory(received_at=now - timedelta(hours=5))  # not refunded yet

    lag = {
        b.label: b.count
        for b in client_for_role(Role.FINANCE).get(reverse("home")).context["refund_lag"]
    }

    assert lag["under 1 day"] == 1
    assert lag["not refunded yet"] == 1
    assert sum(lag.values()) == 2


@pytest.mark.parametrize("field", ["order_ref", "return_id", "tracking_number", "zip"])
def test_lookup_by_any_id_opens_the_single_matching_return(client_for_role, field):
    ret = MarketplaceReturnFactory(
        order=OrderFactory(buyer_postal_code="94107"), tracking_number="1Z999AA10123"
    )
    MarketplaceReturnFactory()
    value = "94107" if field == "zip" else getattr(ret, field)

    response = client_for_role(Role.CX).get(reverse("return_lookup"), {"q": value})

    assert response.status_code == 302
    assert response.url == reverse("return_detail", args=[ret.pk])


def test_lookup_with_several_matches_lists_them(client_for_role):
    order = OrderFactory(buyer_postal_code="10001")
    MarketplaceReturnFactory(order=order, order_ref=order.order_id)
    MarketplaceReturnFactory(order=OrderFactory(buyer_postal_code="10001"))

    response = client_for_role(Role.CX).get(reverse("return_lookup"), {"q": "10001"})

    assert response.status_code == 302
    assert response.url == reverse("return_list") + "?q=10001"
    listing = client_for_role(Role.CX).get(response.url)
    assert listing.context["table"].paginator.count == 2


def test_return_page_shows_both_systems_exceptions_and_portal_link(client_for_role):
    ret = MarketplaceReturnFactory(
        order=OrderFactory(buyer_postal_code="94 107"),
        raw_status="BUYER_SHIPPED_ITEM",
        next_action_deadline=timezone.now() + timedelta(hours=5),
    )
    portal = PortalReturnFactory(
        marketplace_return=ret,
        raw_status="In transit",
        connection=PortalConnectionFactory(
            options={"portal_url_template": "https://brand.example/r?o={order_id}&z={zip}"}
        ),
    )
    ExceptionCaseFactory(
        marketplace_return=ret,
        return_ref=ret.return_id,
        title="Tracking differs",
        owner_role=Role.CX,
    )
    ExceptionCaseFactory(return_ref="someone-else", title="Not this one")

    content = client_for_role(Role.CX).get(reverse("return_detail", args=[ret.pk])).content.decode()

    assert "BUYER_SHIPPED_ITEM" in content and portal.raw_status in content
    assert 'data-field="canonical-stage"' in content and 'data-field="deadline"' in content
    assert "Tracking differs" in content and "Not this one" not in content
    assert f"https://brand.example/r?o={ret.order_ref}&amp;z=94%20107" in content


def test_return_page_uses_the_sandbox_portal_default_when_nothing_is_linked(client_for_role):
    ret = MarketplaceReturnFactory(order=OrderFactory(buyer_postal_code="10001"))
    portal_conn = PortalConnectionFactory(is_sandbox=True)

    content = client_for_role(Role.CX).get(reverse("return_detail", args=[ret.pk])).content.decode()

    assert f"{portal_conn.base_url}/returns/?order={ret.order_ref}&amp;zip=10001" in content


def test_return_page_has_no_portal_link_for_a_live_connection_without_template(client_for_role):
    ret = MarketplaceReturnFactory()
    PortalConnectionFactory(is_sandbox=False)

    content = client_for_role(Role.CX).get(reverse("return_detail", args=[ret.pk])).content.decode()

    assert "No return-portal link configured" in content


def test_unknown_return_is_404(client_for_role):
    assert client_for_role(Role.CX).get(reverse("return_detail", args=[999999])).status_code == 404


def test_finance_refund_amount_is_not_a_reason_to_fail(client_for_role):
    # A portal return with no amount at all still renders (no 500 on missing money).
    PortalReturnFactory(
        authorized_refund=None, partial_refund_amount=Decimal("5.00"), received_at=timezone.now()
    )
    assert client_for_role(Role.FINANCE).get(reverse("finance")).status_code == 200


def test_return_page_says_why_a_return_is_not_in_the_portal(client_for_role):
    from returnsync.choices import JobStatus
    from tests.factories import MarketplaceReturnFactory, PortalConnectionFactory, WriteBackFactory

    ret = MarketplaceReturnFactory()
    WriteBackFactory(marketplace_return=ret, connection=PortalConnectionFactory(), action="create_portal_return",
                     status=JobStatus.DEAD, last_error="ZigZag refused: unknown SKU TEE-RED")
    body = client_for_role(Role.CX).get(reverse("return_detail", args=[ret.pk])).content.decode()
    assert "No portal record is linked to this return yet." in body
    assert "Not mirrored: ZigZag refused: unknown SKU TEE-RED" in body
