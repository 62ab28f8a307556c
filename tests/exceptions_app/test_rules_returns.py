"""Return-journey rules: each fires, must not fire on healthy data, and auto-resolves once fixed."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase
from exceptions_app.rules import rule_for
from exceptions_app.rules.base import Scope
from returnsync.choices import JobStatus, ReleaseState, Stage
from returnsync.roles import Role
from tests.factories import (
    MarketplaceReturnFactory,
    OrderFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    WriteBackFactory,
)

pytestmark = pytest.mark.django_db


def detect(code: str, *, now=None) -> list[ExceptionCase]:
    detection_run(scope=Scope(), now=now, rules=[rule_for(code)])
    return list(ExceptionCase.objects.filter(type_code=code).order_by("id"))


def orphan_portal_return(**kwargs):
    values = {"marketplace_return": None, "order": None, "order_ref": "579999999999", "return_ref": "",
              "tracking_number": "1ZORPHAN", "source_created_at": timezone.now() - timedelta(hours=3)}
    return PortalReturnFactory(**{**values, **kwargs})


# --- portal_bypass --------------------------------------------------------------------------


def test_portal_bypass_fires_with_why_it_was_not_mirrored():
    PortalConnectionFactory()
    mr = MarketplaceReturnFactory(source_created_at=timezone.now() - timedelta(hours=2))
    mirror = WriteBackFactory(marketplace_return=mr, action="create_portal_return", status=JobStatus.DEAD,
                              last_error="ZigZag 422: unknown SKU SKU-0001", attempts=8)
    [case] = detect("portal_bypass")
    assert case.status == ExceptionStatus.OPEN and case.owner_role == Role.OPERATIONS
    assert case.marketplace_return == mr and case.write_back == mirror
    assert case.order_ref == mr.order_ref and case.return_ref == mr.return_id
    assert case.evidence["tiktok"]["return_id"] == mr.return_id and case.evidence["portal"] is None
    assert case.evidence["computed"]["why_not_mirrored"] == "ZigZag 422: unknown SKU SKU-0001"


def test_portal_bypass_not_within_grace_nor_refund_only_nor_mirrored():
    PortalConnectionFactory()
    MarketplaceReturnFactory(source_created_at=timezone.now() - timedelta(minutes=5))
    MarketplaceReturnFactory(return_type="REFUND", source_created_at=timezone.now() - timedelta(hours=5))
    PortalReturnFactory(marketplace_return__source_created_at=timezone.now() - timedelta(hours=5))
    assert detect("portal_bypass") == []


def test_portal_bypass_auto_resolves_once_linked():
    PortalConnectionFactory()
    mr = MarketplaceReturnFactory(source_created_at=timezone.now() - timedelta(hours=2))
    [case] = detect("portal_bypass")
    PortalReturnFactory(marketplace_return=mr)
    [case] = detect("portal_bypass")
    assert case.status == ExceptionStatus.AUTO_RESOLVED and case.closed_at is not None
    assert list(case.activities.values_list("verb", flat=True)) == ["opened", "auto_resolved"]


# --- orphan_portal_return -------------------------------------------------------------------


def test_orphan_fires_with_what_was_tried():
    pr = orphan_portal_return(return_ref="4035000000999")
    [case] = detect("orphan_portal_return")
    assert case.owner_role == Role.CX and case.portal_return == pr and case.portal_ref == pr.external_id
    assert case.evidence["computed"]["tried"] == {
        "order_ref": "579999999999", "return_ref": "4035000000999", "order_found": False,
        "tiktok_return_found": False, "grace_minutes": 60}


def test_orphan_not_when_the_order_is_known_or_too_new():
    OrderFactory(order_id="577000000001")
    orphan_portal_return(order_ref="577000000001")
    orphan_portal_return(source_created_at=timezone.now() - timedelta(minutes=10))
    PortalReturnFactory()  # linked
    assert detect("orphan_portal_return") == []


def test_orphan_auto_resolves_when_the_tiktok_order_arrives():
    orphan_portal_return()
    detect("orphan_portal_return")
    MarketplaceReturnFactory(order_ref="579999999999")
    [case] = detect("orphan_portal_return")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- status_drift ---------------------------------------------------------------------------


def drifting(**kwargs):
    return PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now() - timedelta(hours=3),
                               marketplace_return__stage=Stage.IN_TRANSIT,
                               marketplace_return__raw_status="BUYER_SHIPPED_ITEM", **kwargs)


def test_status_drift_fires_and_links_the_failed_write_back():
    pr = drifting()
    receipt = WriteBackFactory(marketplace_return=pr.marketplace_return, status=JobStatus.DEAD,
                               last_error="TikTok 36009004: invalid status")
    [case] = detect("status_drift")
    assert case.owner_role == Role.OPERATIONS and case.write_back == receipt
    assert case.evidence["portal"]["stage"] == "received" and case.evidence["tiktok"]["stage"] == "in_transit"
    assert case.evidence["computed"]["receipt_write_back"]["last_error"] == "TikTok 36009004: invalid status"


def test_status_drift_not_before_threshold_nor_when_tiktok_moved_on():
    PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now() - timedelta(minutes=30),
                        marketplace_return__stage=Stage.IN_TRANSIT)
    PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now() - timedelta(hours=3),
                        marketplace_return__stage=Stage.REFUNDED)
    assert detect("status_drift") == []


def test_status_drift_auto_resolves_when_tiktok_reports_receipt():
    pr = drifting()
    detect("status_drift")
    pr.marketplace_return.stage = Stage.REFUNDED
    pr.marketplace_return.save()
    [case] = detect("status_drift")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- tracking_mismatch ----------------------------------------------------------------------


def test_tracking_mismatch_fires_with_both_numbers():
    pr = PortalReturnFactory(tracking_number="1ZAAA111", marketplace_return__tracking_number="1ZBBB222")
    [case] = detect("tracking_mismatch")
    assert case.owner_role == Role.CX and case.tracking_numbers == "1ZAAA111 1ZBBB222"
    assert case.evidence["computed"]["tiktok_tracking"] == "1ZBBB222"
    assert case.evidence["computed"]["portal_tracking"] == "1ZAAA111"
    assert case.portal_return == pr


def test_tracking_mismatch_ignores_spaces_case_and_missing_numbers():
    PortalReturnFactory(tracking_number="1z 999 aa1", marketplace_return__tracking_number="1Z999AA1")
    PortalReturnFactory(tracking_number="", marketplace_return__tracking_number="1Z999AA2")
    assert detect("tracking_mismatch") == []


def test_tracking_mismatch_auto_resolves_when_both_agree():
    pr = PortalReturnFactory(tracking_number="1ZAAA111", marketplace_return__tracking_number="1ZBBB222")
    detect("tracking_mismatch")
    pr.tracking_number = "1ZBBB222"
    pr.save()
    [case] = detect("tracking_mismatch")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- approval_deadline ----------------------------------------------------------------------


def test_approval_deadline_fires_inside_the_warning_window():
    mr = MarketplaceReturnFactory(stage=Stage.REQUESTED, raw_status="RETURN_OR_REFUND_REQUEST_PENDING",
                                  next_action_deadline=timezone.now() + timedelta(hours=5))
    [case] = detect("approval_deadline")
    assert case.owner_role == Role.CX and case.marketplace_return == mr
    assert case.evidence["computed"]["lapsed"] is False


def test_approval_deadline_not_when_far_or_already_answered():
    MarketplaceReturnFactory(stage=Stage.REQUESTED, next_action_deadline=timezone.now() + timedelta(hours=30))
    MarketplaceReturnFactory(stage=Stage.APPROVED, next_action_deadline=timezone.now() + timedelta(hours=1))
    assert detect("approval_deadline") == []


def test_approval_deadline_auto_resolves_once_answered():
    mr = MarketplaceReturnFactory(stage=Stage.REQUESTED, next_action_deadline=timezone.now() + timedelta(hours=5))
    detect("approval_deadline")
    mr.stage = Stage.APPROVED
    mr.save()
    [case] = detect("approval_deadline")
    assert case.status == ExceptionStatus.AUTO_RESOLVED


# --- status_drift and the refund gate, release_deadline ---------------------------------------


def received_at_the_warehouse(**kwargs):
    return PortalReturnFactory(stage=Stage.RECEIVED, received_at=timezone.now() - timedelta(hours=6),
                               marketplace_return__stage=Stage.RECEIVED, **kwargs)


def test_a_release_the_gate_holds_is_not_status_drift():
    released = received_at_the_warehouse(release_state=ReleaseState.RELEASED)
    for state in ReleaseState.holds():
        received_at_the_warehouse(release_state=state)
    [case] = detect("status_drift")
    assert case.subject_id == released.pk


def test_release_deadline_fires_when_tiktok_decides_before_the_warehouse_is_done():
    soon = timezone.now() + timedelta(hours=3)
    waiting = received_at_the_warehouse(release_state=ReleaseState.AWAITING_INSPECTION,
                                        marketplace_return__next_action_deadline=soon)
    received_at_the_warehouse(release_state=ReleaseState.AWAITING_INSPECTION,  # far off: not yet
                              marketplace_return__next_action_deadline=timezone.now() + timedelta(hours=40))
    received_at_the_warehouse(release_state=ReleaseState.HELD_SHORT,  # the partial-refund task owns it
                              marketplace_return__next_action_deadline=soon)
    [case] = detect("release_deadline")
    assert case.subject_id == waiting.pk and case.owner_role == Role.OPERATIONS
    assert case.evidence["computed"]["waiting_for"] == "the inspection" and "TikTok refunds in full" in case.title
    waiting.release_state = ReleaseState.RELEASED  # inspected: the gate released it
    waiting.save()
    [case] = detect("release_deadline")
    assert case.status == ExceptionStatus.AUTO_RESOLVED
