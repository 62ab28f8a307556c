"""Operations fixes a case from the case itself, over real HTTP against both sandboxes: a
TikTok return the portal never got is created there now (its failed mirror retried), and a
receipt TikTok answered with success yet never recorded is sent again, once, without a
second refund. In bulk, each ticked case reports its own outcome."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag.sandbox import api as zigzag_sandbox
from exceptions_app.choices import ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase
from exceptions_app.rules.base import Scope
from returnsync.choices import JobStatus, WriteBackAction
from returnsync.models import PortalReturn, Refund, WriteBack
from returnsync.roles import Role
from tests.connectors.zigzag.conftest import pump
from tests.connectors.zigzag.test_refund_gate import TEE, decisions, delivered_to_the_warehouse
from tests.exceptions_app.factories import ExceptionCaseFactory

pytestmark = [pytest.mark.django_db(transaction=True)]
HTMX = {"HTTP_HX_REQUEST": "true"}


def detect(hours: float) -> None:
    detection_run(scope=Scope(), now=timezone.now() + timedelta(hours=hours))


def a_return_the_portal_never_got(tiktok, zigzag) -> str:
    """ZigZag is down while TikTok's return arrives: the mirror fails and waits for its next try."""
    zigzag_sandbox.set_faults(zigzag, server_error_next=50)
    order = tiktok_sandbox.create_order(tiktok, lines=[{**TEE, "quantity": 1}], stock=5)
    return_id = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")["return_id"]
    pump(tiktok, zigzag)
    mirror = WriteBack.objects.get(marketplace_return__return_id=return_id,
                                   action=WriteBackAction.CREATE_PORTAL_RETURN)
    assert mirror.status == JobStatus.RETRYING and "503" in mirror.last_error
    zigzag_sandbox.set_faults(zigzag)  # ZigZag is back
    detect(hours=1)
    return return_id


def test_operations_creates_the_missing_portal_record_from_the_case(systems, client_for_role):
    tiktok, zigzag, _ = systems
    return_id = a_return_the_portal_never_got(tiktok, zigzag)
    case = ExceptionCase.objects.get(type_code="portal_bypass", return_ref=return_id)

    cx = client_for_role(Role.CX)
    assert "Create it in the portal now" not in cx.get(case.get_absolute_url()).content.decode()
    url = reverse("exception_action", args=[case.pk, "mirror"])
    assert cx.post(url, **HTMX).status_code == 403  # operations' case

    ops = client_for_role(Role.OPERATIONS)
    assert "Create it in the portal now" in ops.get(case.get_absolute_url()).content.decode()
    answer = ops.post(url, **HTMX).content.decode()
    assert "Queued: create the return in ZigZag" in answer
    ops.post(url, **HTMX)  # pressed twice before the worker ran: still one record
    pump(tiktok, zigzag)

    portal = PortalReturn.objects.get(marketplace_return__return_id=return_id)
    assert zigzag_sandbox.return_state(zigzag, return_id)["id"] == portal.external_id
    assert WriteBack.objects.get(marketplace_return__return_id=return_id,
                                 action=WriteBackAction.CREATE_PORTAL_RETURN).status == JobStatus.SUCCEEDED
    detect(hours=1)
    case.refresh_from_db()
    assert case.status == ExceptionStatus.AUTO_RESOLVED
    assert "already auto-resolved" in ops.post(url, **HTMX).content.decode().lower()


def test_operations_sends_an_unrecorded_receipt_again_and_tiktok_refunds_once(systems, client_for_role):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [{**TEE, "quantity": 1}])
    tiktok_sandbox.add_faults(tiktok, ignore_decisions=[return_id])  # TikTok says success, records nothing
    zigzag_sandbox.scan(zigzag, zz_id, received={"TEE": 1})
    zigzag_sandbox.grade(zigzag, zz_id, grades={"TEE": "SELLABLE"})
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == []
    detect(hours=3)
    case = ExceptionCase.objects.get(type_code="status_drift", return_ref=return_id)

    ops = client_for_role(Role.OPERATIONS)
    page = ops.get(case.get_absolute_url()).content.decode()
    assert "Send the receipt to TikTok again" in page
    assert "success, yet TikTok still shows the parcel unreturned" in page  # its last answer

    tiktok_sandbox.set_faults(tiktok)
    url = reverse("exception_action", args=[case.pk, "resend"])
    assert "Receipt sent to TikTok again" in ops.post(url, **HTMX).content.decode()
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == ["APPROVE_RECEIVED_PACKAGE"]
    # Pressed again by someone who did not refresh: TikTok answers "already received"; no second refund.
    ops.post(url, **HTMX)
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == ["APPROVE_RECEIVED_PACKAGE"]
    assert Refund.objects.filter(marketplace_return__return_id=return_id).count() == 1
    detect(hours=3)
    case.refresh_from_db()
    assert case.status == ExceptionStatus.AUTO_RESOLVED


def test_a_receipt_the_gate_holds_cannot_be_sent_from_a_case(systems, client_for_role):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [{**TEE, "quantity": 2}])
    zigzag_sandbox.scan(zigzag, zz_id, received={"TEE": 1})  # one of two: the gate holds the receipt
    pump(tiktok, zigzag)
    mreturn = PortalReturn.objects.get(return_ref=return_id).marketplace_return
    # A drift case raised before the gate held it (the rule no longer would): the button must still refuse.
    case = ExceptionCaseFactory(type_code="status_drift", owner_role=Role.OPERATIONS, marketplace_return=mreturn,
                                return_ref=return_id)
    answer = client_for_role(Role.OPERATIONS).post(reverse("exception_action", args=[case.pk, "resend"]), **HTMX)
    assert "has not released this return" in answer.content.decode()
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == []


def test_bulk_mirror_and_retry_report_per_case(systems, client_for_role):
    tiktok, zigzag, _ = systems
    first = a_return_the_portal_never_got(tiktok, zigzag)
    second = a_return_the_portal_never_got(tiktok, zigzag)
    cases = list(ExceptionCase.objects.filter(type_code="portal_bypass", return_ref__in=[first, second]))
    other = ExceptionCase.objects.exclude(type_code="portal_bypass").filter(status=ExceptionStatus.OPEN).first()
    ids = [c.pk for c in cases] + ([other.pk] if other else [])

    ops = client_for_role(Role.OPERATIONS)
    answer = ops.post(reverse("exception_bulk"), {"action": "mirror", "ids": ids}, **HTMX).content.decode()
    assert f"{len(cases)} of {len(ids)}" in answer
    pump(tiktok, zigzag)
    assert PortalReturn.objects.filter(marketplace_return__return_id__in=[first, second]).count() == 2

    cx_answer = client_for_role(Role.CX).post(reverse("exception_bulk"), {"action": "retry", "ids": ids},
                                              **HTMX).content.decode()
    assert f"0 of {len(ids)}" in cx_answer
