"""CX answers a TikTok request from the return page or its approval-deadline case: the
decision goes to TikTok over real HTTP (once), a reject only with one of TikTok's reasons,
and the case closes when TikTok no longer waits."""
from __future__ import annotations

import pytest
from django.urls import reverse

from connectors.tiktok_shop.sandbox import api as sandbox
from connectors.tiktok_shop.sync import return_refetch
from exceptions_app.choices import ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase
from exceptions_app.rules.base import Scope
from returnsync.models import MarketplaceReturn
from returnsync.roles import Role
from tests.connectors.zigzag.conftest import drain

pytestmark = [pytest.mark.django_db(transaction=True)]
HTMX = {"HTTP_HX_REQUEST": "true"}


@pytest.fixture
def request_waiting(live_server):
    conn = sandbox.connect(name="decide-test", server_url=live_server.url)
    order = sandbox.create_order(conn, lines=[{"sku_id": "17001", "seller_sku": "TEE", "sale_price": "24.00"}],
                                 notify=False)
    ret = sandbox.create_return(conn, order_id=order["id"], return_type="REFUND", notify=False,
                                create_time=sandbox.now_ts() - 40 * 3600)
    return_refetch(connection=conn, return_id=ret["return_id"])
    return conn, MarketplaceReturn.objects.get(connection=conn, return_id=ret["return_id"])


def test_cx_rejects_with_one_of_tiktoks_reasons_and_the_case_closes(request_waiting, client_for_role):
    conn, mreturn = request_waiting
    detection_run(scope=Scope())
    case = ExceptionCase.objects.get(type_code="approval_deadline", marketplace_return=mreturn)
    cx = client_for_role(Role.CX)
    page = cx.get(case.get_absolute_url()).content.decode()
    assert "Approve (APPROVE_REFUND)" in page and 'data-seller-center="order"' in page
    reasons = cx.get(reverse("return_reject_reasons", args=[mreturn.pk])).content.decode()
    assert 'value="seller_reject_apply_product_used"' in reasons
    url = reverse("return_decide", args=[mreturn.pk])
    refused = cx.post(url, {"kind": "reject", "reject_reason": "made_up"}, **HTMX).content.decode()
    assert "TikTok does not take that reason" in refused
    sent = cx.post(url, {"kind": "reject", "reject_reason": "seller_reject_apply_product_used",
                         "comment": "Worn"}, **HTMX).content.decode()
    assert "Sent to TikTok: REJECT_REFUND" in sent
    drain()
    state = sandbox.return_state(conn, mreturn.return_id)
    assert state["decisions"] == ["REJECT_REFUND"] and state["return_status"] == "REFUND_OR_RETURN_REQUEST_REJECT"
    return_refetch(connection=conn, return_id=mreturn.return_id)
    detection_run(scope=Scope())
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.AUTO_RESOLVED


def test_approving_twice_sends_one_decision_and_finance_may_not_decide(request_waiting, client_for_role):
    conn, mreturn = request_waiting
    url = reverse("return_decide", args=[mreturn.pk])
    assert client_for_role(Role.FINANCE).post(url, {"kind": "approve"}).status_code == 403
    cx = client_for_role(Role.CX)
    cx.post(url, {"kind": "approve"}, **HTMX)
    cx.post(url, {"kind": "approve"}, **HTMX)
    drain()
    assert sandbox.return_state(conn, mreturn.return_id)["decisions"] == ["APPROVE_REFUND"]
    return_refetch(connection=conn, return_id=mreturn.return_id)
    page = cx.get(reverse("return_detail", args=[mreturn.pk])).content.decode()
    assert 'data-field="no-decision"' in page  # TikTok waits for nothing any more


def test_a_request_answered_from_here_counts_on_time_on_the_service_level_page(request_waiting, client_for_role):
    conn, mreturn = request_waiting
    cx = client_for_role(Role.CX)
    cx.post(reverse("return_decide", args=[mreturn.pk]), {"kind": "approve"}, **HTMX)
    drain()
    return_refetch(connection=conn, return_id=mreturn.return_id)
    page = client_for_role(Role.OPERATIONS).get(
        reverse("service_levels"), {"since": "2000-01-01", "shop": conn.pk}).content.decode()
    request_card = page.split('data-measure="request"')[1].split("</section>")[0]
    # TikTok's deadline came from the first snapshot (40 h into its 48 h); the answer beat it.
    assert "1 on time · 0 late · 0 overdue · 0 running" in request_card
    assert "100% on time" in request_card and f'data-group="{conn.name}"' in request_card
