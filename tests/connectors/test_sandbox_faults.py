"""The sandboxes' knobs the fault scenario relies on, and its command.

Targeted TikTok faults, ZigZag history played in the past, ZigZag's authorised refund:
each observed through our connectors over real HTTP. The whole scenario's precision and
recall: tests/exceptions_app/test_fault_scenario.py."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal
from io import StringIO

import pytest
from django.core.management import CommandError, call_command
from django.utils import timezone

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.tiktok_shop.sandbox import state as sm
from connectors.zigzag.sandbox import api as zigzag_sandbox
from returnsync.choices import JobStatus, Stage
from returnsync.models import MarketplaceReturn, PortalReturn, WriteBack
from tests.connectors.zigzag.conftest import drain

LINE = {"sku_id": "8101", "product_id": "8100", "seller_sku": "MUG", "product_name": "Mug", "sale_price": "12.00"}


@pytest.fixture
def sandboxes(live_server):
    tiktok = tiktok_sandbox.connect(name="TikTok Shop (sandbox)", server_url=live_server.url)
    zigzag = zigzag_sandbox.connect(name="ZigZag (sandbox)", server_url=live_server.url, tiktok_connection=tiktok)
    return tiktok, zigzag


@pytest.mark.django_db
def test_add_faults_extends_targeted_lists_and_refuses_unknown_keys():
    app = tiktok_sandbox.create_app(app_key="faults-app")
    tiktok_sandbox.set_faults(app, latency_ms=5)
    tiktok_sandbox.add_faults(app, ignore_decisions=["1"])
    faults = tiktok_sandbox.add_faults(app, ignore_decisions=["2", "1"])
    assert faults == {"latency_ms": 5, "ignore_decisions": ["1", "2"]}
    with pytest.raises(ValueError, match="Unknown fault"):
        tiktok_sandbox.add_faults(app, ignore_everything=True)


@pytest.mark.django_db(transaction=True)
def test_tiktok_that_ignores_a_decision_answers_success_and_records_nothing(sandboxes):
    tiktok, _ = sandboxes
    order = tiktok_sandbox.create_order(tiktok, lines=[LINE])
    ret = tiktok_sandbox.create_return(tiktok, order_id=order["id"], status=sm.AWAITING_BUYER_SHIP)
    tiktok_sandbox.advance_return(tiktok, ret["return_id"], to_status=sm.BUYER_SHIPPED_ITEM,
                                  next_actions=[sm.RESPOND_RECEIVE], tracking_number="ZZT0000000042")
    tiktok_sandbox.add_faults(tiktok, ignore_decisions=[ret["return_id"]])
    tiktok_sandbox.deliver_webhooks(tiktok)
    drain()
    mreturn = MarketplaceReturn.objects.get(return_id=ret["return_id"])
    assert mreturn.stage == Stage.RECEIVED and mreturn.tracking_number == "ZZT0000000042"

    from connectors.tiktok_shop.services import writeback_queue_decision
    write_back = writeback_queue_decision(marketplace_return=mreturn, decision="APPROVE_RECEIVED_PACKAGE")
    drain()
    write_back.refresh_from_db()
    assert write_back.status == JobStatus.SUCCEEDED  # TikTok said yes…
    state = tiktok_sandbox.return_state(tiktok, ret["return_id"])
    assert state["return_status"] == sm.BUYER_SHIPPED_ITEM and not state["received"]  # …and did nothing
    assert state["decisions"] == []


@pytest.mark.django_db(transaction=True)
def test_zigzag_history_in_the_past_and_its_authorised_refund_reach_our_portal_return(sandboxes):
    _, zigzag = sandboxes
    now = timezone.now()
    ret, _ = zigzag_sandbox.create_return(zigzag, reference="WEB-1", order_reference="5700", currency="USD",
                                          items=[{"sku": "MUG", "quantity": 2, "unit_price": "12.00"}],
                                          at=now - timedelta(days=3))
    zigzag_sandbox.ship(zigzag, ret.return_id, at=now - timedelta(days=2, hours=12))
    zigzag_sandbox.scan(zigzag, ret.return_id, received={"MUG": 1}, at=now - timedelta(days=2))
    zigzag_sandbox.authorise_refund(zigzag, ret.return_id, at=now - timedelta(days=1))
    assert zigzag_sandbox.return_state(zigzag, ret.return_id)["refund_amount"] == "12.00"  # 1 received × 12.00
    zigzag_sandbox.deliver_webhooks(zigzag)
    drain()

    portal = PortalReturn.objects.get(connection=zigzag, return_ref="WEB-1")
    assert portal.source_created_at == now - timedelta(days=3)
    assert portal.received_at == now - timedelta(days=2)
    assert portal.authorized_refund == Decimal("12.00")


@pytest.mark.django_db(transaction=True)
def test_a_malformed_zigzag_webhook_becomes_a_dead_letter(sandboxes):
    from returnsync.choices import InboundStatus
    from returnsync.models import InboundEvent

    _, zigzag = sandboxes
    zigzag_sandbox.queue_raw_webhook(zigzag, {"event_id": "evt_broken", "event": "return.received"})
    assert zigzag_sandbox.deliver_webhooks(zigzag) == 0  # our receiver answers 400
    event = InboundEvent.objects.get(connection=zigzag)
    assert event.status == InboundStatus.FAILED and "names no return" in event.error


@pytest.mark.django_db
def test_command_needs_a_mode_and_both_sandboxes():
    with pytest.raises(CommandError, match="--mix or at least one --mode"):
        call_command("sandbox_faults")
    with pytest.raises(CommandError, match="Seed both sandboxes first"):
        call_command("sandbox_faults", "--mode", "approval_deadline")


@pytest.mark.django_db
def test_command_prints_the_manifest_and_does_not_pile_up(sandboxes):
    out = StringIO()
    call_command("sandbox_faults", "--mode", "approval_deadline", "--mode", "orphan_portal_return",
                 "--count", "2", stdout=out)
    lines = out.getvalue().splitlines()
    assert sum(line.startswith("approval_deadline") for line in lines) == 2
    assert sum(line.startswith("orphan_portal_return") and "zigzag ref ZW" in line for line in lines) == 2
    assert "4 injected, 0 already there" in lines[-1]
    deadline_returns = tiktok_sandbox.get_shop(sandboxes[0]).returns.filter(return_status=sm.PENDING)
    assert deadline_returns.count() == 2

    again = StringIO()
    call_command("sandbox_faults", "--mode", "approval_deadline", "--mode", "orphan_portal_return",
                 "--count", "2", stdout=again)
    assert "0 injected, 4 already there" in again.getvalue()
    assert deadline_returns.count() == 2
    assert zigzag_sandbox.ZigZagReturn.objects.count() == 2
    assert not WriteBack.objects.exists()  # the command only touched the sandboxes
