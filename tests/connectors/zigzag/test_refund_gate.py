"""The refund gate over real HTTP against both sandboxes: TikTok's received-package decision
(which releases the FULL refund) goes out only when everything came back and passed
inspection and the value agrees; otherwise the release is held and finance's task says
what is due, what TikTok refunded already and what remains or must be recovered; an offer
of the rest as TikTok's partial refund round-trips through the buyer's answer. Duplicated
and reordered deliveries end in the same state."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag.sandbox import api as zigzag_sandbox
from exceptions_app.choices import ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase
from exceptions_app.rules.base import Scope
from returnsync import reconciliation
from returnsync.choices import ReleaseState
from returnsync.models import PortalReturn, Refund
from returnsync.roles import Role
from tests.connectors.zigzag.conftest import pump

pytestmark = [pytest.mark.django_db(transaction=True)]
D = Decimal
HTMX = {"HTTP_HX_REQUEST": "true"}
TEE = {"sku_id": "7101", "product_id": "7100", "seller_sku": "TEE", "product_name": "Tee", "sale_price": "20.00"}
CAP = {"sku_id": "7301", "product_id": "7300", "seller_sku": "CAP", "product_name": "Cap", "sale_price": "15.00"}


def delivered_to_the_warehouse(tiktok, zigzag, lines, *, chaos=False):
    """A TikTok return mirrored to ZigZag, shipped and delivered (TikTok waits for the seller)."""
    if chaos:
        tiktok_sandbox.set_faults(tiktok, seed=11, duplicate_webhooks=1.0, reorder_webhooks=True)
        zigzag_sandbox.set_faults(zigzag, seed=11, duplicate_webhooks=1.0, reorder_webhooks=True)
    order = tiktok_sandbox.create_order(tiktok, lines=lines, stock=5)
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status="AWAITING_BUYER_SHIP")
    pump(tiktok, zigzag)
    zz = zigzag_sandbox.return_state(zigzag, ret["return_id"])
    zigzag_sandbox.ship(zigzag, zz["id"])
    tiktok_sandbox.advance_return(tiktok, ret["return_id"], to_status="BUYER_SHIPPED_ITEM",
                                  next_actions=["SELLER_RESPOND_RECEIVE_PACKAGE"])
    return ret["return_id"], zz["id"]


def decisions(tiktok, return_id) -> list[str]:
    return tiktok_sandbox.return_state(tiktok, return_id)["decisions"]


def task(return_id: str) -> ExceptionCase:
    detection_run(scope=Scope())
    return ExceptionCase.objects.get(type_code="partial_refund", return_ref=return_id)


@pytest.mark.parametrize("chaos", [False, True], ids=["in-order", "duplicated-and-reordered"])
def test_a_short_scan_releases_nothing_and_the_task_says_what_remains(systems, chaos):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [{**TEE, "quantity": 2}], chaos=chaos)
    zigzag_sandbox.scan(zigzag, zz_id, received={"TEE": 1})
    zigzag_sandbox.grade(zigzag, zz_id, grades={"TEE": "SELLABLE"})
    pump(tiktok, zigzag)

    assert decisions(tiktok, return_id) == []  # TikTok never heard the decision that pays in full
    portal = PortalReturn.objects.get(return_ref=return_id)
    assert portal.release_state == ReleaseState.HELD_SHORT and "1 of 2 × TEE" in portal.release_note
    # One tee of two came back: 20.00 of 40.00 worth, 21.65 with its share of TikTok's 43.30.
    assert portal.partial_refund_amount == D("20.00") and portal.expected_refund == D("21.65")
    case = task(return_id)
    computed = case.evidence["computed"]
    assert (computed["refund_due"], computed["refunded_so_far"], computed["remaining"]) == ("21.65", "0.00", "21.65")
    assert case.amount == D("21.65") and "refund 21.65 USD by hand" in case.title
    assert "TikTok refunds in full by itself at" in case.title  # its own deadline is on the task
    assert not ExceptionCase.objects.filter(type_code="status_drift").exists()  # a held release is not drift


def test_a_full_scan_that_passes_inspection_releases_once_and_reconciles_as_matched(systems):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [{**TEE, "quantity": 2}])
    zigzag_sandbox.scan(zigzag, zz_id)
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == []  # received, not inspected yet: the default policy waits
    assert PortalReturn.objects.get(return_ref=return_id).release_state == ReleaseState.AWAITING_INSPECTION

    zigzag_sandbox.grade(zigzag, zz_id)
    pump(tiktok, zigzag)
    for row in zigzag_sandbox.ZigZagWebhook.objects.all():  # ZigZag's daily re-send: nothing more goes out
        zigzag_sandbox.redeliver(zigzag, row.event_id)
    pump(tiktok, zigzag)

    assert decisions(tiktok, return_id) == ["APPROVE_RECEIVED_PACKAGE"]
    portal = PortalReturn.objects.get(return_ref=return_id)
    assert portal.release_state == ReleaseState.REFUNDED
    assert Refund.objects.get(marketplace_return__return_id=return_id).amount == D("43.30")
    today = timezone.localdate()
    [row] = [r for r in reconciliation.reconciliation_rows(since=today, until=today)
             if r.portal_return_id == portal.pk]
    assert (row.bucket, row.expected, row.refunded) == ("matched", D("43.30"), D("43.30"))


def test_tiktok_refunding_by_itself_before_inspection_turns_the_task_into_a_recovery(systems):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [TEE, CAP])
    zigzag_sandbox.scan(zigzag, zz_id)
    pump(tiktok, zigzag)
    tiktok_sandbox.platform_decides(tiktok, return_id)  # its deadline passed: TikTok refunds 37.89 in full
    pump(tiktok, zigzag)
    zigzag_sandbox.grade(zigzag, zz_id, grades={"TEE": "SELLABLE", "CAP": "DAMAGED"})
    pump(tiktok, zigzag)

    assert decisions(tiktok, return_id) == []
    case = task(return_id)
    computed = case.evidence["computed"]
    # The tee (20.00 of 35.00 worth) is due: 21.65 of 37.89; TikTok paid 37.89, so 16.24 comes back.
    assert (computed["action"], computed["refund_due"], computed["refunded_so_far"]) == ("recover", "21.65", "37.89")
    assert case.amount == D("16.24") and "recover 16.24 USD" in case.title
    assert "refund 0.00" not in case.title


def test_nothing_due_says_reject_never_refund_zero(systems):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [CAP])
    zigzag_sandbox.scan(zigzag, zz_id)
    zigzag_sandbox.grade(zigzag, zz_id, grades={"CAP": "DAMAGED"})
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == []
    case = task(return_id)
    assert case.evidence["computed"]["action"] == "reject" and case.amount is None
    assert "nothing is due: reject the refund" in case.title and "0.00" not in case.title


def test_the_offer_round_trips_through_the_buyers_answer(systems, client_for_role):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [{**TEE, "quantity": 3}])
    zigzag_sandbox.scan(zigzag, zz_id, received={"TEE": 1})
    zigzag_sandbox.grade(zigzag, zz_id, grades={"TEE": "SELLABLE"})
    pump(tiktok, zigzag)
    case = task(return_id)
    assert case.amount == D("21.65")  # one tee of three: 20.00 + its 1.65 tax
    finance = client_for_role(Role.FINANCE)
    page = finance.get(case.get_absolute_url()).content.decode()
    assert 'data-field="remaining"><strong>21.65</strong> USD' in page
    assert "Offer 21.65 USD as a partial refund on TikTok" in page

    url = reverse("exception_action", args=[case.pk, "offer"])
    assert "Partial refund offered on TikTok" in finance.post(url, **HTMX).content.decode()
    finance.post(url, **HTMX)  # pressed twice: one offer
    pump(tiktok, zigzag)
    state = tiktok_sandbox.return_state(tiktok, return_id)
    assert state["decisions"] == ["OFFER_PARTIAL_REFUND"] and state["partial_refund"]["amount"] == "21.65"
    assert state["return_status"] == "AWAITING_BUYER_RESPONSE"

    tiktok_sandbox.buyer_answers_partial_refund(tiktok, return_id, accept=False)
    pump(tiktok, zigzag)
    page = finance.get(case.get_absolute_url()).content.decode()
    assert "the buyer rejected it" in page
    assert task(return_id).status == ExceptionStatus.OPEN

    # Offered again after a word with the buyer, and accepted this time: TikTok pays 21.65.
    assert "Partial refund offered on TikTok" in finance.post(url, **HTMX).content.decode()
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == ["OFFER_PARTIAL_REFUND", "OFFER_PARTIAL_REFUND"]
    tiktok_sandbox.buyer_answers_partial_refund(tiktok, return_id, accept=True)
    pump(tiktok, zigzag)
    assert Refund.objects.get(marketplace_return__return_id=return_id).amount == D("21.65")
    assert task(return_id).status == ExceptionStatus.AUTO_RESOLVED  # the refund matched: the task closed itself


def test_an_offer_outside_tiktoks_caps_is_refused_with_the_reason(systems, client_for_role):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [{**TEE, "quantity": 2}])
    zigzag_sandbox.scan(zigzag, zz_id, received={"TEE": 1})
    pump(tiktok, zigzag)
    case = task(return_id)
    finance = client_for_role(Role.FINANCE)
    assert "outside: refund by hand in Seller Center" in finance.get(case.get_absolute_url()).content.decode()
    body = finance.post(reverse("exception_action", args=[case.pk, "offer"]), **HTMX).content.decode()
    assert "between 5.00 and 20.00" in body  # at most half of the 40.00 price: 21.65 is too much
    assert decisions(tiktok, return_id) == []


def test_a_value_the_portal_authorised_differently_holds_the_release_until_corrected(systems):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [TEE])
    zigzag_sandbox.scan(zigzag, zz_id)
    zigzag_sandbox.authorise_refund(zigzag, zz_id, amounts={"TEE": "15.00"})
    zigzag_sandbox.grade(zigzag, zz_id)
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == []
    assert PortalReturn.objects.get(return_ref=return_id).release_state == ReleaseState.HELD_VALUE
    detection_run(scope=Scope())
    mismatch = ExceptionCase.objects.get(type_code="refund_mismatch", return_ref=return_id)
    # Like with like: the authorised item price against TikTok's items subtotal (not its 21.65 total).
    assert mismatch.evidence["computed"]["tiktok_refund"] == "20.00" and mismatch.amount == D("5.00")

    zigzag_sandbox.authorise_refund(zigzag, zz_id, amounts={"TEE": "20.00"})  # corrected in the portal
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == ["APPROVE_RECEIVED_PACKAGE"]
    detection_run(scope=Scope())
    assert ExceptionCase.objects.get(pk=mismatch.pk).status == ExceptionStatus.AUTO_RESOLVED


def test_the_receipt_time_is_the_scan_not_the_latest_snapshot(systems):
    tiktok, zigzag, _ = systems
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [TEE])
    scanned = timezone.now() - timedelta(hours=5)
    zigzag_sandbox.set_faults(zigzag, drop_webhooks=1.0)  # the scan's webhook is lost
    zigzag_sandbox.scan(zigzag, zz_id, at=scanned)
    zigzag_sandbox.deliver_webhooks(zigzag)
    zigzag_sandbox.set_faults(zigzag)
    zigzag_sandbox.grade(zigzag, zz_id)  # graded now: one snapshot carries both changes
    pump(tiktok, zigzag)
    portal = PortalReturn.objects.get(return_ref=return_id)
    assert abs(portal.received_at - scanned) < timedelta(seconds=1)
    assert portal.inspected_at > scanned + timedelta(hours=4)


def test_a_portal_that_owns_the_value_releases_only_once_it_authorised_it(systems):
    tiktok, zigzag, _ = systems
    zigzag.options = {**zigzag.options, "authorized_refund_required": True}
    zigzag.save()
    return_id, zz_id = delivered_to_the_warehouse(tiktok, zigzag, [TEE])
    zigzag_sandbox.scan(zigzag, zz_id)
    zigzag_sandbox.grade(zigzag, zz_id)
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == []
    assert PortalReturn.objects.get(return_ref=return_id).release_state == ReleaseState.AWAITING_AUTHORISATION
    zigzag_sandbox.authorise_refund(zigzag, zz_id)  # the item's price: TikTok's items subtotal
    pump(tiktok, zigzag)
    assert decisions(tiktok, return_id) == ["APPROVE_RECEIVED_PACKAGE"]
