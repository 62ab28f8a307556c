"""Stock, SKU and plumbing rules: each fires, must not fire on healthy data, and auto-resolves once fixed."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus, SubjectKind
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase
from exceptions_app.rules import rule_for
from exceptions_app.rules.base import Scope
from returnsync.choices import Grade, InboundStatus, JobStatus, Stage
from returnsync.models import InventoryAdjustment
from returnsync.roles import Role
from tests.factories import (
    BundleComponentFactory,
    BundleMappingFactory,
    InboundEventFactory,
    InventoryAdjustmentFactory,
    MarketplaceReturnFactory,
    OrderLineFactory,
    PortalReturnFactory,
    PortalReturnLineFactory,
    WriteBackFactory,
)

pytestmark = pytest.mark.django_db


def detect(code: str, *, now=None) -> list[ExceptionCase]:
    detection_run(scope=Scope(), now=now, rules=[rule_for(code)])
    return list(ExceptionCase.objects.filter(type_code=code).order_by("id"))


# --- bundle_component_unmapped --------------------------------------------------------------


def component_returned(sku="COMP-A"):
    pr = PortalReturnFactory(stage=Stage.RECEIVED)
    OrderLineFactory(order=pr.order, seller_sku="KIT-1")
    return PortalReturnLineFactory(portal_return=pr, sku=sku)


def test_bundle_component_unmapped_fires_per_line_with_the_order_skus():
    line = component_returned()
    [case] = detect("bundle_component_unmapped")
    assert case.owner_role == Role.OPERATIONS and case.subject_kind == SubjectKind.PORTAL_RETURN_LINE
    assert case.subject_id == line.pk and case.portal_return == line.portal_return
    assert case.evidence["computed"]["returned_sku"] == "COMP-A"
    assert case.evidence["computed"]["order_skus"] == ["KIT-1"]
    assert case.evidence["line"]["sku"] == "COMP-A"


def test_bundle_component_unmapped_not_for_a_sold_sku_or_a_mapped_component():
    component_returned(sku="KIT-1")  # the order line itself
    line = component_returned(sku="COMP-B")
    BundleComponentFactory(bundle=BundleMappingFactory(bundle_sku="KIT-1"), component_sku="COMP-B")
    assert line.portal_return.order.lines.filter(seller_sku="KIT-1").exists()
    assert detect("bundle_component_unmapped") == []


def test_bundle_component_unmapped_fires_when_the_mapping_is_inactive_and_auto_resolves_when_mapped():
    component_returned()
    bundle = BundleMappingFactory(bundle_sku="KIT-1", is_active=False)
    BundleComponentFactory(bundle=bundle, component_sku="COMP-A")
    [case] = detect("bundle_component_unmapped")
    assert case.status == ExceptionStatus.OPEN
    bundle.is_active = True
    bundle.save()
    [case] = detect("bundle_component_unmapped")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- restock_latency ------------------------------------------------------------------------


def sellable_line():
    pr = PortalReturnFactory(stage=Stage.INSPECTED, received_at=timezone.now() - timedelta(hours=8),
                             inspected_at=timezone.now() - timedelta(hours=6))
    return PortalReturnLineFactory(portal_return=pr, received_quantity=1, grade=Grade.SELLABLE)


def test_restock_latency_fires_with_the_restock_row():
    line = sellable_line()
    InventoryAdjustmentFactory(portal_return_line=line, status=JobStatus.DEAD, last_error="warehouse not mapped")
    [case] = detect("restock_latency")
    assert case.owner_role == Role.OPERATIONS and case.subject_id == line.pk
    assert case.evidence["computed"]["restock"] == {"status": "dead", "last_error": "warehouse not mapped"}


def test_restock_latency_not_when_restocked_damaged_or_recent():
    InventoryAdjustmentFactory(portal_return_line=sellable_line(), status=JobStatus.SUCCEEDED)
    damaged = sellable_line()
    damaged.grade = Grade.DAMAGED
    damaged.save()
    pr = PortalReturnFactory(stage=Stage.INSPECTED, inspected_at=timezone.now() - timedelta(hours=1))
    PortalReturnLineFactory(portal_return=pr, received_quantity=1, grade=Grade.SELLABLE)
    assert detect("restock_latency") == []


def test_restock_latency_auto_resolves_once_stock_is_confirmed():
    line = sellable_line()
    adjustment = InventoryAdjustmentFactory(portal_return_line=line, status=JobStatus.RETRYING)
    detect("restock_latency")
    adjustment.status = JobStatus.SUCCEEDED
    adjustment.save()
    [case] = detect("restock_latency")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- sync_failure ---------------------------------------------------------------------------


def test_sync_failure_fires_for_a_dead_write_back_and_a_dead_letter():
    write_back = WriteBackFactory(status=JobStatus.DEAD, action="approve_refund", attempts=8, last_error="HTTP 500",
                                  last_http_status=500)
    mr = MarketplaceReturnFactory()
    event = InboundEventFactory(status=InboundStatus.FAILED, subject_ref=mr.return_id, error="KeyError: 'data'")
    by_kind = {case.subject_kind: case for case in detect("sync_failure")}
    assert by_kind[SubjectKind.WRITE_BACK].write_back == write_back
    assert by_kind[SubjectKind.WRITE_BACK].evidence["computed"]["last_error"] == "HTTP 500"
    assert by_kind[SubjectKind.WRITE_BACK].order_ref == write_back.marketplace_return.order_ref
    assert by_kind[SubjectKind.INBOUND_EVENT].inbound_event == event
    assert by_kind[SubjectKind.INBOUND_EVENT].order_ref == mr.order_ref
    assert by_kind[SubjectKind.INBOUND_EVENT].owner_role == Role.ADMIN


def test_sync_failure_not_for_retrying_or_processed():
    WriteBackFactory(status=JobStatus.RETRYING, action="approve_refund", attempts=3)
    InboundEventFactory(status=InboundStatus.PROCESSED)
    assert detect("sync_failure") == []


@pytest.mark.parametrize("action", ["create_portal_return", "approve_received_package", "update_inventory"])
def test_sync_failure_leaves_a_dead_step_to_the_rule_owning_its_consequence(action):
    # portal_bypass, status_drift and restock_latency raise these (linking the write-back).
    WriteBackFactory(status=JobStatus.DEAD, action=action, attempts=8)
    assert detect("sync_failure") == []


def test_sync_failure_auto_resolves_after_a_successful_retry():
    write_back = WriteBackFactory(status=JobStatus.DEAD, action="approve_refund", attempts=8)
    event = InboundEventFactory(status=InboundStatus.FAILED)
    detect("sync_failure")
    write_back.status = JobStatus.SUCCEEDED
    write_back.save()
    event.status = InboundStatus.PROCESSED
    event.save()
    assert {case.status for case in detect("sync_failure")} == {ExceptionStatus.AUTO_RESOLVED}


def test_restock_latency_judges_each_component_of_a_bundle_line():
    bundle = BundleMappingFactory(bundle_sku="KIT")
    BundleComponentFactory(bundle=bundle, component_sku="KIT-A", price_share=Decimal("0.5"))
    BundleComponentFactory(bundle=bundle, component_sku="KIT-B", price_share=Decimal("0.5"))
    line = sellable_line()
    line.sku = "KIT"
    line.save()
    InventoryAdjustmentFactory(portal_return_line=line, seller_sku="KIT-A", status=JobStatus.SUCCEEDED)
    InventoryAdjustmentFactory(portal_return_line=line, seller_sku="KIT-B", status=JobStatus.DEAD,
                               last_error="warehouse not mapped")
    [case] = detect("restock_latency")  # KIT-A went through; that does not hide KIT-B
    computed = case.evidence["computed"]
    assert computed["not_restocked"] == ["KIT-B"]
    assert computed["restock"] == {"status": "dead", "last_error": "warehouse not mapped"}
    assert "(KIT-B)" in case.title
    InventoryAdjustment.objects.filter(seller_sku="KIT-B").update(status=JobStatus.SUCCEEDED)
    [case] = detect("restock_latency")
    assert case.status == ExceptionStatus.AUTO_RESOLVED
