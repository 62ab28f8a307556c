"""Money rules: each fires, must not fire on healthy data, and auto-resolves once fixed."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase, ExceptionTypeSetting
from exceptions_app.rules import rule_for
from exceptions_app.rules.base import Scope
from returnsync.choices import Grade, JobStatus, RefundStatus, Stage
from returnsync.roles import Role
from returnsync.services import portal_return_partial_refund_refresh
from tests.factories import (
    BundleComponentFactory,
    BundleMappingFactory,
    MarketplaceReturnLineFactory,
    OrderLineFactory,
    PortalReturnFactory,
    PortalReturnLineFactory,
    RefundFactory,
    WriteBackFactory,
)

pytestmark = pytest.mark.django_db


def detect(code: str, *, now=None) -> list[ExceptionCase]:
    detection_run(scope=Scope(), now=now, rules=[rule_for(code)])
    return list(ExceptionCase.objects.filter(type_code=code).order_by("id"))


# --- refund_mismatch ------------------------------------------------------------------------


def test_refund_mismatch_fires_with_both_amounts_and_the_difference():
    PortalReturnFactory(authorized_refund=Decimal("30.00"), marketplace_return__refund_total=Decimal("24.00"))
    [case] = detect("refund_mismatch")
    assert case.owner_role == Role.FINANCE and case.amount == Decimal("6.00") and case.currency == "USD"
    computed = case.evidence["computed"]
    assert (computed["portal_authorized"], computed["tiktok_refund"], computed["difference"]) == (
        "30.00", "24.00", "6.00")


def test_refund_mismatch_not_within_tolerance_but_fires_when_an_admin_tightens_it():
    PortalReturnFactory(authorized_refund=Decimal("24.30"), marketplace_return__refund_total=Decimal("24.00"))
    assert detect("refund_mismatch") == []
    ExceptionTypeSetting.objects.create(type_code="refund_mismatch",
                                        thresholds={"tolerance_amount": "0.10", "tolerance_percent": "0"})
    [case] = detect("refund_mismatch")
    assert case.amount == Decimal("0.30")


def test_refund_mismatch_percentage_tolerance_scales_with_the_amount():
    # 2.00 on 400.00 is 0.5 %: inside the default 1 %.
    PortalReturnFactory(authorized_refund=Decimal("402.00"), marketplace_return__refund_total=Decimal("400.00"))
    assert detect("refund_mismatch") == []


def test_refund_mismatch_auto_resolves_when_corrected():
    pr = PortalReturnFactory(authorized_refund=Decimal("30.00"), marketplace_return__refund_total=Decimal("24.00"))
    detect("refund_mismatch")
    pr.authorized_refund = Decimal("24.00")
    pr.save()
    [case] = detect("refund_mismatch")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- partial_refund -------------------------------------------------------------------------


def received_return(**kwargs):
    return PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now() - timedelta(hours=1), **kwargs)


def test_partial_refund_fires_with_per_line_amounts_and_currency():
    pr = received_return(currency="EUR")
    PortalReturnLineFactory(portal_return=pr, sku="TEE", expected_quantity=3, received_quantity=2,
                            unit_price=Decimal("10.00"), currency="EUR")
    PortalReturnLineFactory(portal_return=pr, sku="CAP", expected_quantity=1, received_quantity=1,
                            grade=Grade.DAMAGED, unit_price=Decimal("5.00"), currency="EUR")
    portal_return_partial_refund_refresh(portal_return=pr)
    [case] = detect("partial_refund")
    assert case.owner_role == Role.FINANCE and case.amount == Decimal("20.00") and case.currency == "EUR"
    detail = case.evidence["computed"]["partial_refund"]
    assert detail["refund_amount"] == "20.00" and detail["withheld_amount"] == "15.00"
    assert {line["sku"]: line["refund_amount"] for line in detail["lines"]} == {"TEE": "20.00", "CAP": "0.00"}


def test_partial_refund_bundle_components_by_price_share_sum_exactly():
    pr = received_return()
    bundle_line = OrderLineFactory(order=pr.order, seller_sku="KIT", sale_price=Decimal("100.00"))
    bundle = BundleMappingFactory(bundle_sku="KIT")
    for sku in ("A", "B", "C"):
        BundleComponentFactory(bundle=bundle, component_sku=sku, price_share=Decimal("0.333333"))
    for sku, received in (("A", 1), ("B", 1), ("C", 0)):
        PortalReturnLineFactory(portal_return=pr, sku=sku, order_line=bundle_line, unit_price=None,
                                expected_quantity=1, received_quantity=received)
    portal_return_partial_refund_refresh(portal_return=pr)
    [case] = detect("partial_refund")
    lines = case.evidence["computed"]["partial_refund"]["lines"]
    assert sum(Decimal(line["line_total"]) for line in lines) == Decimal("100.00")
    assert case.amount == sum(Decimal(line["refund_amount"]) for line in lines) == Decimal("66.67")


def test_partial_refund_not_when_everything_came_back_sellable():
    pr = received_return()
    PortalReturnLineFactory(portal_return=pr, expected_quantity=2, received_quantity=2, grade=Grade.SELLABLE)
    portal_return_partial_refund_refresh(portal_return=pr)
    assert detect("partial_refund") == []


def test_partial_refund_auto_resolves_when_the_missing_item_arrives():
    pr = received_return()
    line = PortalReturnLineFactory(portal_return=pr, expected_quantity=2, received_quantity=1)
    portal_return_partial_refund_refresh(portal_return=pr)
    detect("partial_refund")
    line.received_quantity = 2
    line.save()
    portal_return_partial_refund_refresh(portal_return=pr)
    [case] = detect("partial_refund")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- refund_lag -----------------------------------------------------------------------------


def lagging():
    return PortalReturnFactory(stage=Stage.INSPECTED, received_at=timezone.now() - timedelta(hours=80),
                               marketplace_return__stage=Stage.RECEIVED)


def test_refund_lag_fires_after_the_service_level():
    pr = lagging()
    [case] = detect("refund_lag")
    assert case.owner_role == Role.FINANCE and case.portal_return == pr
    assert case.evidence["computed"]["lag_hours"] == 72


def test_refund_lag_not_when_refunded_or_recent():
    pr = lagging()
    RefundFactory(marketplace_return=pr.marketplace_return, status=RefundStatus.SUCCEEDED)
    PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now() - timedelta(hours=10))
    assert detect("refund_lag") == []


def test_refund_lag_auto_resolves_on_refund():
    pr = lagging()
    detect("refund_lag")
    RefundFactory(marketplace_return=pr.marketplace_return, status=RefundStatus.SUCCEEDED)
    [case] = detect("refund_lag")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- refund_outside_portal ------------------------------------------------------------------


def refunded_outside():
    pr = PortalReturnFactory(stage=Stage.IN_TRANSIT, marketplace_return__stage=Stage.REFUNDED,
                             marketplace_return__raw_status="RETURN_OR_REFUND_REQUEST_SUCCESS")
    RefundFactory(marketplace_return=pr.marketplace_return, amount=Decimal("24.00"), external_id="RF-TT-1")
    return pr


def test_refund_outside_portal_fires_with_the_tiktok_refund():
    refunded_outside()
    [case] = detect("refund_outside_portal")
    assert case.owner_role == Role.FINANCE and case.severity == "critical"
    assert case.evidence["computed"]["tiktok_refund"]["id"] == "RF-TT-1"
    assert case.amount == Decimal("24.00")


def test_refund_outside_portal_not_when_our_write_back_released_it_or_portal_closed():
    pr = refunded_outside()
    WriteBackFactory(marketplace_return=pr.marketplace_return, status=JobStatus.SUCCEEDED)
    PortalReturnFactory(stage=Stage.REFUNDED, marketplace_return__stage=Stage.REFUNDED)
    assert detect("refund_outside_portal") == []


def test_refund_outside_portal_auto_resolves_when_the_portal_closes_it():
    pr = refunded_outside()
    detect("refund_outside_portal")
    pr.stage = Stage.CANCELLED
    pr.save()
    [case] = detect("refund_outside_portal")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- money judged like with like, and the partial-refund task's settlement ------------------------


def test_refund_mismatch_compares_the_item_price_with_tiktoks_items_subtotal():
    # The portal authorised the full item price; TikTok's 21.65 includes 1.65 tax: no mismatch.
    PortalReturnFactory(authorized_refund=Decimal("20.00"), marketplace_return__refund_total=Decimal("21.65"),
                        marketplace_return__refund_subtotal=Decimal("20.00"))
    assert detect("refund_mismatch") == []
    # A portal whose authorised value includes tax and shipping is compared with the total.
    PortalReturnFactory(authorized_refund=Decimal("20.00"), marketplace_return__refund_total=Decimal("21.65"),
                        marketplace_return__refund_subtotal=Decimal("20.00"),
                        connection__options={"authorized_refund_basis": "total"})
    [case] = detect("refund_mismatch")
    assert case.evidence["computed"]["compared_on"] == "total" and case.amount == Decimal("1.65")


def partial(due: str, **kwargs):
    return PortalReturnFactory(received_at=timezone.now(), partial_refund_amount=Decimal(due),
                               partial_refund_detail={"due_total": due, "refund_amount": due, "currency": "USD",
                                                      "lines": [{"sku": "TEE"}]}, **kwargs)


def test_partial_refund_says_what_remains_what_to_recover_or_to_reject():
    to_refund = partial("21.65")
    RefundFactory(marketplace_return=to_refund.marketplace_return, amount=Decimal("10.00"))
    to_recover = partial("21.65")
    RefundFactory(marketplace_return=to_recover.marketplace_return, amount=Decimal("43.30"))
    nothing_due = partial("0.00")
    cases = {case.portal_return_id: case for case in detect("partial_refund")}
    assert cases[to_refund.pk].amount == Decimal("11.65")
    assert "refund the remaining 11.65 USD (10.00 of 21.65 refunded)" in cases[to_refund.pk].title
    assert cases[to_recover.pk].evidence["computed"]["to_recover"] == "21.65"
    assert "recover 21.65 USD" in cases[to_recover.pk].title
    assert cases[nothing_due.pk].amount is None and "reject the refund" in cases[nothing_due.pk].title
    assert not any("refund 0.00" in case.title for case in cases.values())


def test_partial_refund_closes_itself_when_tiktoks_refund_matches_and_not_when_it_differs():
    settles = partial("21.65")
    differs = partial("21.65")
    detect("partial_refund")
    RefundFactory(marketplace_return=settles.marketplace_return, amount=Decimal("21.65"))
    RefundFactory(marketplace_return=differs.marketplace_return, amount=Decimal("30.00"))
    detect("partial_refund")
    assert ExceptionCase.objects.get(portal_return=settles).status == ExceptionStatus.AUTO_RESOLVED
    recover = ExceptionCase.objects.get(portal_return=differs, status__in=ExceptionStatus.active())
    assert recover.evidence["computed"]["action"] == "recover" and recover.amount == Decimal("8.35")


def test_refund_lag_clears_when_tiktok_refunds_the_order_without_a_linked_return():
    pr = lagging()
    pr.marketplace_return = None
    pr.save()
    line = PortalReturnLineFactory(portal_return=pr, sku="TEE-9")
    detect("refund_lag")
    # TikTok refunds another return on the same order, covering that SKU.
    refund = RefundFactory(order_ref=pr.order_ref, amount=Decimal("21.65"))
    refund.marketplace_return.order_ref = pr.order_ref
    refund.marketplace_return.save()
    MarketplaceReturnLineFactory(marketplace_return=refund.marketplace_return, seller_sku=line.sku)
    [case] = detect("refund_lag")
    assert case.status == ExceptionStatus.AUTO_RESOLVED
