"""Every list page runs the same number of queries for 3 rows as for 30: an N+1 (a
relation read per row without select_related/prefetch) makes these fail."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse

from returnsync.roles import Role
from tests.factories import (
    ApiCallFactory,
    BundleComponentFactory,
    BundleMappingFactory,
    ConnectionFactory,
    InboundEventFactory,
    InventoryAdjustmentFactory,
    MarketplaceReturnFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    RefundFactory,
    WarehouseMappingFactory,
    WriteBackFactory,
)

pytestmark = pytest.mark.django_db


def a_return_with_portal_record():
    PortalReturnFactory(marketplace_return=MarketplaceReturnFactory())


def a_bundle():
    bundle = BundleMappingFactory()
    BundleComponentFactory(bundle=bundle)
    BundleComponentFactory(bundle=bundle)


def a_connection():
    ConnectionFactory()
    PortalConnectionFactory()


def a_refund_linked_to_both():
    portal = PortalReturnFactory()
    RefundFactory(marketplace_return=portal.marketplace_return, portal_return=portal)


def a_write_back_on_both():
    portal = PortalReturnFactory()
    WriteBackFactory(marketplace_return=portal.marketplace_return, portal_return=portal)


LISTS: dict[str, Callable[[], None]] = {
    "return_list": a_return_with_portal_record,
    "refund_list": a_refund_linked_to_both,
    "bundle_list": a_bundle,
    "inventory_list": lambda: InventoryAdjustmentFactory(),
    "writeback_list": a_write_back_on_both,
    "connection_list": a_connection,
    "inbound_list": lambda: InboundEventFactory(),
    "apicall_list": lambda: ApiCallFactory(),
    "warehouse_list": lambda: WarehouseMappingFactory(),
}


def count_queries(client, url: str, **params) -> int:
    client.get(url, params)  # warm up: session, user and groups are read once per request anyway
    with CaptureQueriesContext(connection) as queries:
        response = client.get(url, params)
        if response.streaming:  # a CSV export reads its rows while it streams
            b"".join(response.streaming_content)
    assert response.status_code == 200
    return len(queries)


@pytest.mark.parametrize("url_name", list(LISTS))
@pytest.mark.parametrize("params", [{}, {"export": "csv"}], ids=["page", "csv"])
def test_list_query_count_does_not_grow_with_rows(client_for_role, url_name, params):
    client = client_for_role(Role.ADMIN)
    url = reverse(url_name)
    make = LISTS[url_name]
    for _ in range(3):
        make()
    with_3 = count_queries(client, url, **params)
    for _ in range(27):
        make()
    with_30 = count_queries(client, url, **params)
    assert with_30 == with_3, f"{url_name}: {with_3} queries for 3 rows, {with_30} for 30"


def test_return_detail_query_count_does_not_grow_with_portal_records_and_events(client_for_role):
    from tests.factories import PortalReturnLineFactory, ReturnEventFactory

    client = client_for_role(Role.CX)
    ret = MarketplaceReturnFactory()

    def add():
        portal = PortalReturnFactory(marketplace_return=ret, connection=PortalConnectionFactory())
        PortalReturnLineFactory(portal_return=portal)
        ReturnEventFactory(marketplace_return=ret)
        ReturnEventFactory(
            marketplace_return=None,
            portal_return=portal,
            order_ref=ret.order_ref,
            return_ref=ret.return_id,
        )
        RefundFactory(marketplace_return=ret)

    url = reverse("return_detail", args=[ret.pk])
    add()
    few = count_queries(client, url)
    for _ in range(5):
        add()
    assert count_queries(client, url) == few


def test_home_query_count_does_not_grow_with_data(client_for_role):
    client = client_for_role(Role.ADMIN)
    url = reverse("home")

    def add():
        MarketplaceReturnFactory()
        RefundFactory()
        WriteBackFactory()
        InventoryAdjustmentFactory()
        ConnectionFactory()

    add()
    few = count_queries(client, url)
    for _ in range(10):
        add()
    assert count_queries(client, url) == few


def test_dashboard_pages_query_count_does_not_grow_with_data(client_for_role):
    """Home (with exceptions and charts), finance (tasks, partials, reconciliation and its
    CSV), sync health and a connection page: the same queries for 1 or 11 of everything."""
    from datetime import timedelta
    from decimal import Decimal

    from django.utils import timezone

    from exceptions_app.choices import ExceptionStatus
    from returnsync.choices import InboundStatus, JobStatus
    from tests.factories import SyncCursorFactory, UserFactory
    from tests.returnsync.factories_exceptions import ExceptionCaseFactory

    client = client_for_role(Role.ADMIN)
    conn = ConnectionFactory()
    someone = UserFactory()

    def add():
        portal = PortalReturnFactory(received_at=timezone.now(), partial_refund_amount=Decimal("3.00"))
        RefundFactory(marketplace_return=portal.marketplace_return)
        ExceptionCaseFactory(type_code="partial_refund", portal_return=portal,
                             marketplace_return=portal.marketplace_return,
                             return_ref=portal.marketplace_return.return_id)
        ExceptionCaseFactory(status=ExceptionStatus.CLAIMED, assignee=someone,
                             due_at=timezone.now() - timedelta(hours=1))
        ApiCallFactory(connection=conn)
        InboundEventFactory(connection=conn, status=InboundStatus.FAILED)
        WriteBackFactory(status=JobStatus.DEAD)
        SyncCursorFactory(connection=PortalConnectionFactory())

    urls = [
        (reverse("home"), {}),
        (reverse("finance"), {}),
        (reverse("finance"), {"export": "csv"}),
        (reverse("sync_health"), {}),
        (reverse("connection_detail", args=[conn.pk]), {}),
    ]
    add()
    few = [count_queries(client, url, **params) for url, params in urls]
    for _ in range(10):
        add()
    assert [count_queries(client, url, **params) for url, params in urls] == few
