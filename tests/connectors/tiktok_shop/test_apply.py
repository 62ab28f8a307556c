"""returns_apply_page: idempotent, stale-aware, set-based; plus polling against the sandbox."""
from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection as db
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from connectors.polling import backfill_run as backfill_returns
from connectors.polling import poll_run as poll_returns
from connectors.tiktok_shop.client import TikTokClient
from connectors.tiktok_shop.sandbox import api as sandbox
from connectors.tiktok_shop.sync import RETURNS_STREAM, returns_apply_page
from returnsync.choices import Stage, SyncRunStatus, TimelineKind
from returnsync.models import (
    MarketplaceReturn,
    MarketplaceReturnLine,
    Order,
    OrderLine,
    OrderLineComponent,
    Refund,
    ReturnEvent,
    SyncCursor,
    SyncRun,
)
from tests.factories import ConnectionFactory

T0 = 1_790_000_000


def make_order(n: int, *, update_time: int = T0, bundle: bool = False) -> dict:
    order_id = f"5770{n:012d}"
    lines = [{"id": f"{order_id}-1", "sku_id": "17001", "seller_sku": "TEE-M", "product_id": "9",
              "product_name": "Tee", "sale_price": "24.00", "currency": "USD"}]
    if bundle:
        lines.append({"id": f"{order_id}-2", "sku_id": "17002", "seller_sku": "KIT", "product_id": "9",
                      "sale_price": "40.00", "currency": "USD", "combined_listing_skus": [
                          {"sku_id": "18001", "sku_count": 1, "seller_sku": "KIT-A", "product_id": "8"},
                          {"sku_id": "18002", "sku_count": 2, "seller_sku": "KIT-B", "product_id": "8"}]})
    return {"id": order_id, "status": "DELIVERED", "create_time": T0 - 86400, "update_time": update_time,
            "payment": {"currency": "USD"}, "recipient_address": {"postal_code": f"{10000 + n}"},
            "line_items": lines}


def make_return(n: int, *, status: str = "RETURN_OR_REFUND_REQUEST_PENDING", update_time: int = T0,
                action: str = "SELLER_RESPOND_REFUND", deadline: int | None = None, tracking: str = "") -> dict:
    order_id = f"5770{n:012d}"
    return {
        "return_id": f"4035{n:012d}", "order_id": order_id, "return_type": "RETURN_AND_REFUND",
        "return_status": status, "role": "BUYER", "return_reason": "Wrong size",
        "return_tracking_number": tracking, "create_time": T0 - 60, "update_time": update_time,
        "seller_next_action_response": [{"action": action, "deadline": deadline or update_time + 172800}]
        if action else [],
        "refund_amount": {"currency": "USD", "refund_total": "24.00", "refund_subtotal": "24.00"},
        "return_line_items": [{"return_line_item_id": f"{n}-r1", "order_line_item_id": f"{order_id}-1",
                               "sku_id": "17001", "seller_sku": "TEE-M", "product_name": "Tee",
                               "refund_amount": {"currency": "USD", "refund_total": "24.00"}}],
    }


def snapshot(connection) -> dict:
    """Everything a page can write, minus bookkeeping timestamps and surrogate ids."""
    returns = {
        r["return_id"]: r for r in MarketplaceReturn.objects.filter(connection=connection).values(
            "return_id", "order_ref", "order__order_id", "raw_status", "stage", "next_action",
            "next_action_deadline", "tracking_number", "refund_total", "source_updated_at", "raw")
    }
    lines = sorted(MarketplaceReturnLine.objects.filter(marketplace_return__connection=connection).values_list(
        "marketplace_return__return_id", "line_id", "order_line_id", "refund_amount"))
    orders = sorted(Order.objects.filter(connection=connection).values_list(
        "order_id", "raw_status", "buyer_postal_code", "source_updated_at"))
    return {"returns": returns, "lines": lines, "orders": orders}


@pytest.fixture
def conn(db):
    return ConnectionFactory()


def test_a_page_creates_returns_orders_lines_components_and_timeline(conn):
    returns = [make_return(i) for i in range(5)]
    orders = [make_order(i, bundle=(i == 0)) for i in range(5)]
    counts = returns_apply_page(connection=conn, returns=returns, orders=orders)
    assert (counts.created, counts.updated, counts.stale, counts.orders_created, counts.events) == (5, 0, 0, 5, 5)
    ret = MarketplaceReturn.objects.get(return_id="4035000000000000")
    assert ret.order.order_id == "5770000000000000" and ret.order.buyer_postal_code == "10000"
    assert ret.stage == Stage.REQUESTED and ret.next_action == "SELLER_RESPOND_REFUND"
    assert ret.next_action_deadline == datetime.fromtimestamp(T0 + 172800, tz=UTC)
    assert ret.lines.get().order_line_id == "5770000000000000-1"
    assert OrderLine.objects.filter(order__connection=conn).count() == 6
    assert sorted(OrderLineComponent.objects.values_list("seller_sku", "quantity")) == [("KIT-A", 1), ("KIT-B", 2)]
    event = ReturnEvent.objects.get(return_ref="4035000000000000")
    assert event.kind == TimelineKind.CREATED and event.marketplace_return == ret
    assert event.dedupe_key == f"tiktok:4035000000000000:{T0}:RETURN_OR_REFUND_REQUEST_PENDING"


def test_applying_the_same_page_twice_changes_nothing(conn):
    returns = [make_return(i) for i in range(4)]
    orders = [make_order(i, bundle=True) for i in range(4)]
    returns_apply_page(connection=conn, returns=returns, orders=orders)
    before = snapshot(conn)
    stamps = list(MarketplaceReturn.objects.order_by("id").values_list("updated_at", flat=True))
    events = ReturnEvent.objects.count()
    counts = returns_apply_page(connection=conn, returns=returns, orders=orders)
    assert (counts.created, counts.updated, counts.stale, counts.orders_stale, counts.events) == (0, 0, 4, 4, 0)
    assert snapshot(conn) == before
    assert list(MarketplaceReturn.objects.order_by("id").values_list("updated_at", flat=True)) == stamps
    assert ReturnEvent.objects.count() == events
    assert OrderLineComponent.objects.count() == 8


def test_a_newer_update_applies_and_an_older_one_is_ignored_and_counted(conn):
    returns_apply_page(connection=conn, returns=[make_return(1)], orders=[make_order(1)])
    shipped = make_return(1, status="BUYER_SHIPPED_ITEM", update_time=T0 + 100,
                          action="SELLER_RESPOND_RECEIVE_PACKAGE", tracking="1Z1")
    counts = returns_apply_page(connection=conn, returns=[shipped])
    assert (counts.updated, counts.events) == (1, 1)
    ret = MarketplaceReturn.objects.get()
    assert ret.stage == Stage.RECEIVED and ret.tracking_number == "1Z1"
    change = ReturnEvent.objects.get(kind=TimelineKind.STATUS_CHANGED)
    assert change.data["from"] == "RETURN_OR_REFUND_REQUEST_PENDING" and change.data["status"] == "BUYER_SHIPPED_ITEM"

    older = make_return(1, status="AWAITING_BUYER_SHIP", update_time=T0 + 50, action="")
    counts = returns_apply_page(connection=conn, returns=[older])
    assert (counts.updated, counts.stale, counts.events) == (0, 1, 0)
    assert MarketplaceReturn.objects.get().raw_status == "BUYER_SHIPPED_ITEM"


def test_a_refund_tiktok_paid_is_recorded_once(conn):
    returns_apply_page(connection=conn, returns=[make_return(1)], orders=[make_order(1)])
    assert not Refund.objects.exists()  # requested, not paid
    paid = make_return(1, status="RETURN_OR_REFUND_REQUEST_SUCCESS", update_time=T0 + 100, action="")
    returns_apply_page(connection=conn, returns=[paid])
    done = make_return(1, status="RETURN_OR_REFUND_REQUEST_COMPLETE", update_time=T0 + 200, action="")
    returns_apply_page(connection=conn, returns=[done, done])
    refund = Refund.objects.get()
    assert (refund.amount, refund.currency, refund.status) == (Decimal("24.00"), "USD", "succeeded")
    assert refund.marketplace_return == MarketplaceReturn.objects.get() and refund.order_ref == "5770000000000001"
    assert refund.refunded_at == datetime.fromtimestamp(T0 + 100, tz=UTC)  # when TikTok first said it paid


def test_out_of_order_pages_converge_to_the_in_order_state(db):
    rng = random.Random(7)
    versions = []
    statuses = [("RETURN_OR_REFUND_REQUEST_PENDING", "SELLER_RESPOND_RETURN"), ("AWAITING_BUYER_SHIP", ""),
                ("BUYER_SHIPPED_ITEM", ""), ("BUYER_SHIPPED_ITEM", "SELLER_RESPOND_RECEIVE_PACKAGE"),
                ("RETURN_OR_REFUND_REQUEST_SUCCESS", "")]
    for step, (status, action) in enumerate(statuses):
        versions.append([make_return(i, status=status, action=action, update_time=T0 + 100 * step + i)
                         for i in range(6)])
    orders = [make_order(i, bundle=True) for i in range(6)]
    in_order, shuffled = ConnectionFactory(), ConnectionFactory()
    for page in versions:
        returns_apply_page(connection=in_order, returns=page, orders=orders)
    pages = [p[:] for p in versions]
    for page in pages:
        rng.shuffle(page)
    rng.shuffle(pages)
    for page in pages:  # each page also split and mixed: duplicates and reordering
        returns_apply_page(connection=shuffled, returns=page + page[:2], orders=orders[::-1])
    assert snapshot(shuffled) == snapshot(in_order)
    assert set(MarketplaceReturn.objects.filter(connection=shuffled).values_list("stage", flat=True)) == {
        Stage.REFUNDED}


def test_returns_stored_before_their_order_are_linked_when_it_arrives(conn):
    returns_apply_page(connection=conn, returns=[make_return(3)])
    assert MarketplaceReturn.objects.get().order is None
    returns_apply_page(connection=conn, returns=[], orders=[make_order(3)])
    assert MarketplaceReturn.objects.get().order.order_id == "5770000000000003"


def test_query_count_does_not_grow_with_the_page(conn, django_assert_max_num_queries):
    returns_apply_page(connection=conn, returns=[make_return(0)], orders=[make_order(0, bundle=True)])
    with CaptureQueriesContext(db) as small:
        returns_apply_page(connection=conn, returns=[make_return(i) for i in range(1, 3)],
                           orders=[make_order(i, bundle=True) for i in range(1, 3)])
    with CaptureQueriesContext(db) as big:
        returns_apply_page(connection=conn, returns=[make_return(i) for i in range(3, 53)],
                           orders=[make_order(i, bundle=True) for i in range(3, 53)])
    assert len(big) <= len(small) + 2  # SQLite splits a long statement at its variable limit
    updates = [make_return(i, status="AWAITING_BUYER_SHIP", update_time=T0 + 5, action="") for i in range(53)]
    with django_assert_max_num_queries(len(small) + 2):
        assert returns_apply_page(connection=conn, returns=updates).updated == 53


def test_payloads_without_ids_are_counted_invalid_not_fatal(conn):
    counts = returns_apply_page(connection=conn, returns=[{"order_id": "1"}, make_return(9)])
    assert (counts.invalid, counts.created) == (1, 1)


def test_deadline_changes_come_from_seller_next_action_response(conn):
    returns_apply_page(connection=conn, returns=[make_return(1)])
    later = make_return(1, update_time=T0 + 10, deadline=T0 + 999)
    returns_apply_page(connection=conn, returns=[later])
    ret = MarketplaceReturn.objects.get()
    assert ret.next_action_deadline == datetime.fromtimestamp(T0 + 999, tz=UTC)
    assert ret.source_updated_at == datetime.fromtimestamp(T0 + 10, tz=UTC) - timedelta(0)


# --- polling over real HTTP against the sandbox ---------------------------------------------

class CrashingClient(TikTokClient):
    """The real client, with the process 'dying' when asked for page ``crash_on_page``."""

    def __init__(self, *args, crash_on_page: int, **kwargs):
        super().__init__(*args, **kwargs)
        self.crash_on_page, self.pages = crash_on_page, 0

    def search_returns(self, **kwargs):
        self.pages += 1
        if self.pages == self.crash_on_page:
            raise KeyboardInterrupt("worker killed")
        return super().search_returns(**kwargs)


def seed_returns(conn, n: int, *, start: int) -> list[str]:
    ids = []
    for i in range(n):
        order = sandbox.create_order(conn, lines=[{"sku_id": "17001", "seller_sku": "TEE", "sale_price": "24.00"}],
                                     postal_code=f"{94000 + i}", order_id=f"57{start + i:016d}", notify=False)
        ret = sandbox.create_return(conn, order_id=order["id"], return_id=f"40{start + i:016d}", notify=False)
        ids.append(ret["return_id"])
    return ids


@pytest.mark.urls("connectors.urls")
@pytest.mark.django_db(transaction=True)
def test_poll_pages_fetch_missing_orders_and_survive_a_crash(live_server):
    conn = sandbox.connect(name="poll-test", server_url=live_server.url)
    seed_returns(conn, 70, start=0)
    client = TikTokClient(conn, sleep=lambda s: None)
    later = timezone.now() + timedelta(seconds=2)

    run = poll_returns(connection=conn, client=client, now=later)
    assert run.status == SyncRunStatus.SUCCEEDED
    assert (run.counts["created"], run.counts["pages"], run.counts["orders_fetched"]) == (70, 2, 70)
    assert MarketplaceReturn.objects.filter(connection=conn, order__isnull=False).count() == 70
    watermark = SyncCursor.objects.get(connection=conn, stream=RETURNS_STREAM).watermark
    newest = MarketplaceReturn.objects.filter(connection=conn).order_by("-source_updated_at").first()
    assert watermark == newest.source_updated_at

    # Nothing new: the overlap re-reads recent rows, all counted stale.
    again = poll_returns(connection=conn, client=client, now=later)
    assert again.counts["created"] == again.counts["updated"] == 0 and again.counts["stale"] == 70

    # 60 more returns. The window re-reads the 70 (overlap) then the 60 new ones, 50 per
    # page; the worker dies asking for page 3: pages 1-2 are committed, nothing is skipped.
    seed_returns(conn, 60, start=1000)
    later = timezone.now() + timedelta(seconds=2)
    with pytest.raises(KeyboardInterrupt):
        poll_returns(connection=conn, client=CrashingClient(conn, sleep=lambda s: None, crash_on_page=3), now=later)
    killed = SyncRun.objects.filter(connection=conn).order_by("-id").first()
    assert killed.status == SyncRunStatus.RUNNING  # a killed worker never finishes its run
    stored_after_crash = MarketplaceReturn.objects.filter(connection=conn).count()
    assert stored_after_crash == 100
    cursor = SyncCursor.objects.get(connection=conn, stream=RETURNS_STREAM)
    assert cursor.watermark == max(MarketplaceReturn.objects.filter(connection=conn).values_list(
        "source_updated_at", flat=True))
    final = poll_returns(connection=conn, client=client, now=later)
    assert final.status == SyncRunStatus.SUCCEEDED
    assert MarketplaceReturn.objects.filter(connection=conn).count() == 130
    assert final.counts["created"] == 130 - stored_after_crash


@pytest.mark.urls("connectors.urls")
@pytest.mark.django_db(transaction=True)
def test_backfill_reads_a_range_without_moving_the_watermark(live_server):
    conn = sandbox.connect(name="backfill-test", server_url=live_server.url)
    seed_returns(conn, 12, start=0)
    run = backfill_returns(connection=conn, since=timezone.now() - timedelta(days=1),
                           until=timezone.now() + timedelta(seconds=2),
                           client=TikTokClient(conn, sleep=lambda s: None))
    assert run.status == SyncRunStatus.SUCCEEDED and run.counts["created"] == 12
    assert not SyncCursor.objects.filter(connection=conn, stream=RETURNS_STREAM, watermark__isnull=False).exists()


@pytest.mark.urls("connectors.urls")
@pytest.mark.django_db(transaction=True)
def test_management_commands_poll_and_backfill(live_server, capsys):
    from django.core.management import call_command
    from django.core.management.base import CommandError

    from connectors.management.commands import connector_backfill as tiktok_backfill
    from connectors.management.commands import connector_poll as tiktok_poll
    from connectors.management.commands import writebacks_run as tiktok_writebacks

    conn = sandbox.connect(name="command-test", server_url=live_server.url)
    seed_returns(conn, 3, start=0)
    since = (timezone.now() - timedelta(days=1)).isoformat()
    until = (timezone.now() + timedelta(seconds=2)).isoformat()
    call_command(tiktok_backfill.Command(), "--connection", str(conn.pk), "--since", since, "--until", until)
    assert "'created': 3" in capsys.readouterr().out
    call_command(tiktok_poll.Command(), "--connection", str(conn.pk))
    call_command(tiktok_writebacks.Command())
    with pytest.raises(CommandError):
        call_command(tiktok_backfill.Command(), "--connection", str(conn.pk), "--since", until, "--until", since)
    assert SyncRun.objects.filter(connection=conn, job="tiktok_backfill", status=SyncRunStatus.SUCCEEDED).count() == 1
    assert SyncRun.objects.filter(connection=conn, job="tiktok_poll", status=SyncRunStatus.SUCCEEDED).count() == 1
