"""Finance: the money that waits for a person, and the reconciliation of TikTok's refunds
against what was due, with money in every bucket, totals per currency, drill-down and CSV."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.urls import reverse
from django.utils import timezone

from returnsync import reconciliation
from returnsync.choices import ReleaseState, Stage
from returnsync.roles import Role
from tests.factories import (
    MarketplaceReturnFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    RefundFactory,
)
from tests.returnsync.factories_exceptions import ExceptionCaseFactory

pytestmark = pytest.mark.django_db
D = Decimal


def csv_rows(response) -> list[dict]:
    return list(csv.DictReader(io.StringIO(b"".join(response.streaming_content).decode())))


@pytest.fixture
def buckets():
    """On one portal connection, received today: matched, under-refunded, over-refunded
    (TikTok paid before anything came back), nothing due and closed (matched), pending; and a
    EUR return on the same day (its own totals row)."""
    conn = PortalConnectionFactory(name="ZZ main")
    now = timezone.now()
    made = {}
    made["matched"] = PortalReturnFactory(connection=conn, expected_refund=D("25.98"), received_at=now)
    RefundFactory(marketplace_return=made["matched"].marketplace_return, amount=D("25.98"))
    made["under"] = PortalReturnFactory(connection=conn, expected_refund=D("30.00"), received_at=now)
    RefundFactory(marketplace_return=made["under"].marketplace_return, amount=D("24.00"))
    made["over"] = PortalReturnFactory(connection=conn, expected_refund=None, received_at=None,
                                       marketplace_return=MarketplaceReturnFactory(source_created_at=now))
    RefundFactory(marketplace_return=made["over"].marketplace_return, amount=D("43.30"))
    made["nothing_due"] = PortalReturnFactory(
        connection=conn, expected_refund=D("0.00"), received_at=now,
        marketplace_return=MarketplaceReturnFactory(stage=Stage.REJECTED))
    made["pending"] = PortalReturnFactory(connection=conn, expected_refund=D("10.00"), received_at=now)
    # A portal refund is not a TikTok refund: it does not settle anything.
    RefundFactory(marketplace_return=made["pending"].marketplace_return, connection=conn, amount=D("10.00"))
    made["euro"] = PortalReturnFactory(connection=conn, expected_refund=D("12.00"), received_at=now, currency="EUR",
                                       marketplace_return__currency="EUR")
    RefundFactory(marketplace_return=made["euro"].marketplace_return, amount=D("12.00"), currency="EUR")
    return conn, made


@pytest.mark.parametrize(
    ("refunded", "expected", "open_", "bucket"),
    [
        (D("24"), D("24"), False, "matched"),
        (D("24.30"), D("24"), False, "matched"),  # within the tolerance
        (D("0"), D("24"), True, "pending"),  # received, refund still to come
        (D("0"), None, True, "pending"),  # the parcel is not back yet
        (D("0"), D("0"), False, "matched"),  # nothing due, TikTok closed it
        (D("0"), D("0"), True, "pending"),  # nothing due, TikTok still waits: someone must reject
        (D("20"), D("24"), False, "mismatched"),  # TikTok paid less
        (D("43.30"), D("25.98"), False, "over_refunded"),  # TikTok paid more than came back
        (D("43.30"), None, False, "over_refunded"),  # TikTok paid before anything came back
    ],
)
def test_bucket_of_one_return(refunded, expected, open_, bucket):
    assert reconciliation.reconciliation_bucket(refunded=refunded, expected=expected, marketplace_open=open_,
                                                tolerance=D("0.50")) == bucket


def test_buckets_partition_the_returns_with_money_in_every_column(buckets):
    today = timezone.localdate()
    report = reconciliation.reconciliation_report(since=today - timedelta(days=1), until=today)
    usd = next(r for r in report.rows if r.currency == "USD")
    assert usd.counts == {"matched": 2, "pending": 1, "mismatched": 1, "over_refunded": 1}
    assert usd.total == 5 == sum(usd.counts.values()) and usd.received == 4
    assert (usd.buckets["matched"].expected, usd.buckets["matched"].refunded) == (D("25.98"), D("25.98"))
    assert (usd.buckets["mismatched"].expected, usd.buckets["mismatched"].refunded) == (D("30.00"), D("24.00"))
    assert (usd.buckets["over_refunded"].expected, usd.buckets["over_refunded"].refunded) == (D("0"), D("43.30"))
    assert usd.buckets["pending"].refunded == 0  # the portal's own refund does not count
    assert usd.expected_total == D("65.98") and usd.refunded_total == D("93.28") and usd.difference == D("27.30")
    # Totals per currency: a euro is never added to a dollar.
    assert [(t.currency, t.total, t.refunded_total) for t in report.totals] == [
        ("EUR", 1, D("12.00")), ("USD", 5, D("93.28"))]


def test_a_return_counts_on_its_receipt_day_else_its_creation_day():
    now = timezone.now()
    PortalReturnFactory(
        received_at=None,
        marketplace_return=MarketplaceReturnFactory(source_created_at=now - timedelta(days=5)),
    )
    today = timezone.localdate()
    report = reconciliation.reconciliation_report(since=today - timedelta(days=10), until=today)
    assert [r.day for r in report.rows] == [today - timedelta(days=5)]


def test_reconciliation_filters_by_connection_and_period(buckets, client_for_role):
    other = PortalReturnFactory(received_at=timezone.now())
    client = client_for_role(Role.FINANCE)
    only_other = client.get(reverse("finance"), {"connection": other.connection_id}).context["report"]
    last_month = client.get(reverse("finance"), {"since": "2020-01-01", "until": "2020-01-31"}).context["report"]
    assert [r.connection_id for r in only_other.rows] == [other.connection_id]
    assert last_month.rows == [] and last_month.totals == []


def test_each_count_opens_the_returns_behind_it(buckets, client_for_role):
    conn, made = buckets
    client = client_for_role(Role.FINANCE)
    page = client.get(reverse("finance")).content.decode()
    today = timezone.localdate().isoformat()
    link = f'{reverse("finance_returns")}?bucket=over_refunded&amp;day={today}&amp;connection={conn.pk}&amp;currency=USD'
    assert link in page
    response = client.get(reverse("finance_returns"), {"bucket": "over_refunded", "day": today,
                                                       "connection": conn.pk, "currency": "USD"})
    body = response.content.decode()
    assert response.context["count"] == 1 and f'data-portal-return="{made["over"].pk}"' in body
    assert "Over-refunded returns" in body and 'data-field="refunded">43.30<' in body
    exported = csv_rows(client.get(reverse("finance_returns"), {"bucket": "mismatched", "export": "csv"}))
    assert [(r["portal_return"], r["expected"], r["tiktok_refunded"], r["bucket"]) for r in exported] == [
        (made["under"].external_id, "30.00", "24.00", "mismatched")]


def test_money_waiting_for_a_person_comes_from_one_selector(client_for_role):
    now = timezone.now()
    to_refund = PortalReturnFactory(received_at=now, partial_refund_amount=D("20.00"),
                                    partial_refund_detail={"due_total": "21.65", "currency": "USD", "lines": []})
    to_recover = PortalReturnFactory(received_at=now, partial_refund_amount=D("20.00"),
                                     partial_refund_detail={"due_total": "21.65", "currency": "USD", "lines": []})
    RefundFactory(marketplace_return=to_recover.marketplace_return, amount=D("43.30"))
    settled = PortalReturnFactory(received_at=now, partial_refund_amount=D("20.00"),
                                  partial_refund_detail={"due_total": "21.65", "currency": "USD", "lines": []})
    RefundFactory(marketplace_return=settled.marketplace_return, amount=D("21.65"))
    PortalReturnFactory(received_at=now, partial_refund_amount=D("0.00"),
                        partial_refund_detail={"due_total": "0.00", "currency": "USD", "lines": []})
    PortalReturnFactory(received_at=now, release_state=ReleaseState.HELD_VALUE,
                        release_note="Portal authorised 35.00 USD, TikTok 40.00 USD (items)")
    case = ExceptionCaseFactory(type_code="partial_refund", title="Partial refund to settle",
                                portal_return=to_refund, amount=D("21.65"), currency="USD")
    ExceptionCaseFactory(type_code="refund_lag", title="Lagging refund")

    response = client_for_role(Role.FINANCE).get(reverse("finance"))
    content = response.content.decode()
    assert response.context["task_counts"] == {"refund": 1, "recover": 1, "reject": 1, "check_value": 1}
    assert response.context["tasks_count"] == 4 == len(response.context["tasks"])
    assert 'data-count="refund"><strong>1</strong>' in content
    assert "refund 21.65 USD by hand" in content
    assert "recover 21.65 USD (TikTok refunded 43.30, 21.65 was due)" in content
    assert "nothing is due: reject the refund in Seller Center" in content
    assert "Portal authorised 35.00 USD, TikTok 40.00 USD (items)" in content
    assert "refund 0.00" not in content.lower()
    assert f'href="{reverse("exception_detail", args=[case.pk])}"' in content
    assert "Lagging refund" not in content


def test_finance_csv_per_day_sums_to_the_totals_and_per_return_lists_them(buckets, client_for_role):
    client = client_for_role(Role.FINANCE)
    days = csv_rows(client.get(reverse("finance"), {"export": "csv"}))
    usd = next(r for r in days if r["currency"] == "USD")
    assert usd["connection"] == "ZZ main"
    assert int(usd["returns"]) == sum(int(usd[f"{b}_count"]) for b in reconciliation.BUCKETS) == 5
    assert D(usd["tiktok_refunded_total"]) == sum(D(usd[f"{b}_tiktok_refunded"]) for b in reconciliation.BUCKETS)
    assert D(usd["expected_total"]) == D("65.98") and D(usd["difference"]) == D("27.30")
    returns = csv_rows(client.get(reverse("finance"), {"export": "returns"}))
    assert len(returns) == 6 and {r["bucket"] for r in returns} == set(reconciliation.BUCKETS)


def test_bad_dates_fall_back_to_the_default_period(client_for_role):
    response = client_for_role(Role.FINANCE).get(reverse("finance"), {"since": "not-a-date", "connection": "abc"})
    assert response.status_code == 200
    assert response.context["until"] == timezone.localdate()
