"""Partial refunds and bundle shares: the amounts finance types into Seller Center."""
from __future__ import annotations

from decimal import Decimal as D

import pytest
from django.utils import timezone

from returnsync.choices import Grade, Stage, TimelineKind
from returnsync.models import ReturnEvent
from returnsync.money import allocate, bundle_component_totals, partial_refund_compute
from returnsync.services import portal_return_partial_refund_refresh
from tests.factories import (
    BundleComponentFactory,
    BundleMappingFactory,
    OrderLineFactory,
    PortalReturnFactory,
    PortalReturnLineFactory,
)


@pytest.mark.parametrize("total, weights, expected", [
    ("100.00", [1, 1, 1], ["33.34", "33.33", "33.33"]),
    ("10.00", ["0.333333", "0.333333", "0.333334"], ["3.33", "3.33", "3.34"]),
    ("19.99", [2, 1], ["13.33", "6.66"]),
    ("0.01", [1, 1], ["0.01", "0.00"]),
    ("5.00", [0, 0], ["5.00", "0.00"]),
])
def test_allocate_parts_sum_exactly_to_the_whole(total, weights, expected):
    parts = allocate(D(total), [D(str(w)) for w in weights])
    assert parts == [D(e) for e in expected]
    assert sum(parts) == D(total)


def test_allocate_refuses_negative_weights():
    with pytest.raises(ValueError):
        allocate(D("1.00"), [1, -1])


@pytest.mark.django_db
def test_bundle_components_are_valued_by_price_share():
    bundle = BundleMappingFactory()
    a = BundleComponentFactory(bundle=bundle, component_sku="A", price_share=D("0.333333"))
    b = BundleComponentFactory(bundle=bundle, component_sku="B", price_share=D("0.333333"))
    c = BundleComponentFactory(bundle=bundle, component_sku="C", price_share=D("0.333334"))
    totals = bundle_component_totals(bundle_price=D("49.99"), components=[a, b, c])
    assert totals == {"A": D("16.66"), "B": D("16.66"), "C": D("16.67")}
    assert sum(totals.values()) == D("49.99")


@pytest.mark.django_db
def test_short_receipt_refunds_only_what_came_back():
    ret = PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now(), currency="USD")
    PortalReturnLineFactory(portal_return=ret, sku="TEE", expected_quantity=3, received_quantity=2,
                            unit_price=D("10.00"), grade=Grade.SELLABLE)
    PortalReturnLineFactory(portal_return=ret, sku="CAP", expected_quantity=1, received_quantity=1,
                            unit_price=D("15.50"), grade=Grade.DAMAGED)
    result = partial_refund_compute(portal_return=ret)
    by_sku = {line.sku: line for line in result.lines}
    assert (by_sku["TEE"].refund_amount, by_sku["TEE"].withheld_amount) == (D("20.00"), D("10.00"))
    assert by_sku["TEE"].reason == "2 of 3 received"
    assert (by_sku["CAP"].refund_amount, by_sku["CAP"].withheld_amount) == (D("0.00"), D("15.50"))
    assert by_sku["CAP"].reason == "graded damaged"
    assert result.is_partial and result.refund_amount == D("20.00") and result.total == D("45.50")


@pytest.mark.django_db
def test_bundle_component_line_is_worth_its_share_of_the_bundle_price():
    bundle = BundleMappingFactory(bundle_sku="KIT")
    BundleComponentFactory(bundle=bundle, component_sku="KIT-A", price_share=D("0.6"))
    BundleComponentFactory(bundle=bundle, component_sku="KIT-B", price_share=D("0.4"))
    ret = PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now())
    order_line = OrderLineFactory(order=ret.order, seller_sku="KIT", sale_price=D("33.33"))
    PortalReturnLineFactory(portal_return=ret, order_line=order_line, sku="KIT-A", received_quantity=1,
                            grade=Grade.SELLABLE, unit_price=None)
    PortalReturnLineFactory(portal_return=ret, order_line=order_line, sku="KIT-B", received_quantity=0,
                            unit_price=None)
    result = partial_refund_compute(portal_return=ret)
    by_sku = {line.sku: line for line in result.lines}
    assert by_sku["KIT-A"].line_total + by_sku["KIT-B"].line_total == D("33.33")
    assert (by_sku["KIT-A"].line_total, by_sku["KIT-B"].line_total) == (D("20.00"), D("13.33"))
    assert by_sku["KIT-A"].bundle_sku == "KIT" and by_sku["KIT-A"].price_share == D("0.6")
    assert result.refund_amount == D("20.00") and result.withheld_amount == D("13.33")


@pytest.mark.django_db
def test_refresh_flags_once_and_clears_when_whole():
    ret = PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now(), currency="USD")
    line = PortalReturnLineFactory(portal_return=ret, expected_quantity=2, received_quantity=1,
                                   unit_price=D("12.00"))
    flagged = portal_return_partial_refund_refresh(portal_return=ret)
    assert flagged is not None
    ret.refresh_from_db()
    assert ret.partial_refund_amount == D("12.00")
    assert ret.partial_refund_detail["lines"][0]["withheld_amount"] == "12.00"
    portal_return_partial_refund_refresh(portal_return=ret)  # replay: nothing new on the timeline
    notes = ReturnEvent.objects.filter(portal_return=ret, kind=TimelineKind.NOTE)
    assert notes.count() == 1 and "12.00" in notes.get().summary

    line.received_quantity = 2
    line.save()
    assert portal_return_partial_refund_refresh(portal_return=ret) is None
    ret.refresh_from_db()
    assert ret.partial_refund_amount is None and ret.partial_refund_detail == {}


@pytest.mark.django_db
def test_not_received_yet_is_not_partial():
    ret = PortalReturnFactory(stage=Stage.IN_TRANSIT, received_at=None)
    PortalReturnLineFactory(portal_return=ret, expected_quantity=1, received_quantity=0)
    assert portal_return_partial_refund_refresh(portal_return=ret) is None
