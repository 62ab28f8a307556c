"""Finance: refund tasks, partial refunds due, and the reconciliation report and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from returnsync import selectors
from returnsync.roles import Role
from tests.factories import (
    MarketplaceReturnFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    RefundFactory,
)
from tests.returnsync.factories_exceptions import ExceptionCaseFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def three_buckets():
    """On one portal connection, today: one matched, one mismatched, one pending, one
    matched on the partial refund amount."""
    conn = PortalConnectionFactory(name="ZZ main")
    now = timezone.now()
    matched = PortalReturnFactory(
        connection=conn, authorized_refund=Decimal("24.00"), received_at=now
    )
    RefundFactory(marketplace_return=matched.marketplace_return, amount=Decimal("24.00"))
    mismatched = PortalReturnFactory(
        connection=conn, authorized_refund=Decimal("30.00"), received_at=now
    )
    RefundFactory(marketplace_return=mismatched.marketplace_return, amount=Decimal("24.00"))
    # Not received: counted on the day its TikTok return was created.
    PortalReturnFactory(
        connection=conn,
        authorized_refund=Decimal("10.00"),
        received_at=None,
        marketplace_return=MarketplaceReturnFactory(source_created_at=now),
    )
    partial = PortalReturnFactory(
        connection=conn,
        authorized_refund=Decimal("40.00"),
        partial_refund_amount=Decimal("20.00"),
        received_at=now,
    )
    RefundFactory(marketplace_return=partial.marketplace_return, amount=Decimal("20.00"))
    # A portal refund is not a TikTok refund: it does not make a return matched.
    RefundFactory(
        marketplace_return=mismatched.marketplace_return, connection=conn, amount=Decimal("6.00")
    )
    return conn


def test_reconciliation_buckets_partition_the_totals(three_buckets):
    today = timezone.localdate()
    [row] = selectors.reconciliation_report(since=today - timedelta(days=1), until=today)

    assert row.counts == {"matched": 2, "pending": 1, "mismatched": 1}
    assert row.total == 4 == sum(row.counts.values())
    assert row.received == 3
    assert row.tiktok == {
        "matched": Decimal("44.00"),
        "pending": Decimal(0),
        "mismatched": Decimal("24.00"),
    }
    assert row.portal == {
        "matched": Decimal("44.00"),
        "pending": Decimal("10.00"),
        "mismatched": Decimal("30.00"),
    }
    assert row.tiktok_total == Decimal("68.00") and row.portal_total == Decimal("84.00")


def test_a_return_counts_on_its_receipt_day_else_its_creation_day():
    now = timezone.now()
    PortalReturnFactory(
        received_at=None,
        marketplace_return=MarketplaceReturnFactory(source_created_at=now - timedelta(days=5)),
    )
    today = timezone.localdate()
    rows = selectors.reconciliation_report(since=today - timedelta(days=10), until=today)
    assert [r.day for r in rows] == [today - timedelta(days=5)]


def test_reconciliation_filters_by_connection_and_period(three_buckets, client_for_role):
    other = PortalReturnFactory(received_at=timezone.now())
    client = client_for_role(Role.FINANCE)

    only_other = client.get(reverse("finance"), {"connection": other.connection_id}).context[
        "report"
    ]
    last_month = client.get(
        reverse("finance"), {"since": "2020-01-01", "until": "2020-01-31"}
    ).context["report"]

    assert [r.connection_id for r in only_other] == [other.connection_id]
    assert last_month == []


def test_finance_page_lists_tasks_partials_and_totals(three_buckets, client_for_role):
    ExceptionCaseFactory(
        type_code="partial_refund",
        title="Partial refund to settle",
        amount=Decimal("20.00"),
        currency="USD",
    )
    ExceptionCaseFactory(type_code="refund_mismatch", title="Refund value differs")
    ExceptionCaseFactory(type_code="refund_lag", title="Lagging refund")

    response = client_for_role(Role.FINANCE).get(reverse("finance"))
    content = response.content.decode()

    assert "Partial refund to settle" in content and "Refund value differs" in content
    assert "Lagging refund" not in content
    assert response.context["partials_count"] == 1
    assert 'data-total="total">4<' in content and 'data-total="matched">2<' in content


def test_finance_csv_export_sums_to_the_totals(three_buckets, client_for_role):
    response = client_for_role(Role.FINANCE).get(reverse("finance"), {"export": "csv"})

    assert response["Content-Type"].startswith("text/csv")
    rows = list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert len(rows) == 1
    row = rows[0]
    assert row["connection"] == "ZZ main"
    assert (
        int(row["returns"])
        == sum(int(row[f"{b}_count"]) for b in ("matched", "pending", "mismatched"))
        == 4
    )
    assert Decimal(row["tiktok_refunded_total"]) == sum(
        Decimal(row[f"{b}_tiktok_refunded"]) for b in ("matched", "pending", "mismatched")
    )
    assert Decimal(row["portal_expected_total"]) == Decimal("84.00")


def test_bad_dates_fall_back_to_the_default_period(client_for_role):
    response = client_for_role(Role.FINANCE).get(
        reverse("finance"), {"since": "not-a-date", "connection": "abc"}
    )
    assert response.status_code == 200
    assert response.context["until"] == timezone.localdate()


@pytest.mark.parametrize(
    ("refunded", "expected", "received", "bucket"),
    [
        (Decimal("24"), Decimal("24"), True, "matched"),
        (Decimal("24"), Decimal("24"), False, "pending"),  # refunded, parcel not back yet
        (None, Decimal("24"), True, "pending"),  # received, refund still to come
        (Decimal("24"), Decimal("30"), False, "mismatched"),
        (Decimal("24"), None, True, "mismatched"),  # the portal authorised nothing
    ],
)
def test_three_way_match_bucket(refunded, expected, received, bucket):
    assert (
        selectors.reconciliation_bucket(
            tiktok_refunded=refunded, expected=expected, received=received
        )
        == bucket
    )
