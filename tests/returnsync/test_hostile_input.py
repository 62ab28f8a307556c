"""Odd and hostile input on the dashboard's pages: a clear 4xx or a message, never a 500,
and nothing stored is lost (issue 12, items 3 and 4)."""
from __future__ import annotations

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from returnsync.models import BundleComponent, BundleMapping
from returnsync.roles import Role
from tests.factories import ConnectionFactory

LIST_PAGES = ["return_list", "refund_list", "bundle_list", "warehouse_list", "inventory_list", "writeback_list",
              "connection_list", "inbound_list", "apicall_list", "exception_list"]


@pytest.fixture
def admin(client_for_role):
    client = client_for_role(Role.ADMIN)
    client.raise_request_exception = False
    return client


@pytest.fixture
def ops(client_for_role):
    client = client_for_role(Role.OPERATIONS)
    client.raise_request_exception = False
    return client


@pytest.mark.parametrize("url_name", LIST_PAGES)
@pytest.mark.parametrize("per_page", ["0", "-1", "-99999999999999999999", "99999999999999999999999"])
def test_a_non_positive_or_huge_page_size_shows_the_first_page(admin, url_name, per_page):
    response = admin.get(reverse(url_name), {"per_page": per_page, "page": "2"})
    assert response.status_code == 200
    assert 1 <= response.context["table"].paginator.per_page <= 200


@pytest.mark.parametrize("assignee", ["9223372036854775808", "99999999999999999999999999", "-1", "1e9"])
def test_an_assignee_id_beyond_any_row_is_no_match_not_a_crash(admin, assignee):
    response = admin.get(reverse("exception_list"), {"assignee": assignee})
    assert response.status_code == 200
    assert list(response.context["table"].page.object_list) == []


@pytest.mark.parametrize("query", [{"until": "0001-01-01"}, {"since": "0001-01-01"}, {"until": "9999-12-31"},
                                   {"since": "0001-01-01", "until": "0001-01-02"}])
def test_finance_dates_out_of_range_are_a_form_message(admin, query):
    response = admin.get(reverse("finance"), query)
    assert response.status_code == 200
    assert "Choose a date from 2000-01-01 to 2100-12-31" in response.content.decode()


def test_finance_export_of_an_out_of_range_date_is_a_400_with_the_reason(admin):
    response = admin.get(reverse("finance"), {"until": "0001-01-01", "export": "csv"})
    assert response.status_code == 400
    assert "2000-01-01" in response.content.decode()


def _bundle_post(ops, components: str, bundle_sku="BND-1"):
    return ops.post(reverse("bundle_create"), {"bundle_sku": bundle_sku, "name": "", "is_active": "on",
                                               "components": components})


@pytest.mark.parametrize("components, reason", [
    ("SKU-A, 9223372036854775808, 1", "quantity must be"),
    ("SKU-A, 99999999999999999999999999999, 1", "quantity must be"),
    ("SKU-A, 2147483648, 1", "quantity must be from 1 to 10,000"),
    ("SKU-A, 1, NaN", "price share a number"),
    ("SKU-A, 1, sNaN", "price share a number"),
    ("SKU-A, 1, Infinity", "price share a number"),
])
def test_bundle_form_refuses_absurd_quantities_and_shares_with_a_reason(ops, components, reason):
    BundleMapping.objects.create(bundle_sku="KEEP")
    response = _bundle_post(ops, components)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert list(BundleMapping.objects.values_list("bundle_sku", flat=True)) == ["KEEP"]


def _import(ops, text: str):
    upload = SimpleUploadedFile("bundles.csv", text.encode(), content_type="text/csv")
    return ops.post(reverse("bundle_import"), {"file": upload})


HEADER = "bundle_sku,name,is_active,component_sku,quantity,price_share\n"


@pytest.mark.parametrize("body, reason", [
    (f"BND-1,,yes,SKU-A,1,\"{'x' * 140_000}\"\n", "Not readable CSV"),
    # An unterminated quote swallows the rest of the file into one field: too long, or not a share.
    ("BND-1,,yes,SKU-A,1,\"0.5\n" + "BND-1,,yes,SKU-B,1,0.5\n" * 6000, "Not readable CSV"),
    ("BND-1,,yes,SKU-A,1,\"0.5\nBND-1,,yes,SKU-B,1,0.5\n", "is not a number above 0 and at most 1"),
    ("BND-1,,yes,SKU-A,12345678901234567890,1\n", "is not a whole number from 1 to 10,000"),
    ("BND-1,,yes,SKU-A,2147483648,1\n", "is not a whole number from 1 to 10,000"),
    (f"{'B' * 5000},,yes,SKU-A,1,1\n", "bundle_sku is longer than 100 characters"),
    (f"BND-1,,yes,{'C' * 101},1,1\n", "component_sku is longer than 100 characters"),
    ("BND-1,,yes,SKU-A,1,NaN\n", "is not a number above 0 and at most 1"),
])
def test_bundle_csv_import_reports_unreadable_or_absurd_rows_and_saves_nothing(ops, body, reason):
    BundleMapping.objects.create(bundle_sku="KEEP")
    response = _import(ops, HEADER + body)
    assert response.status_code == 400
    assert reason in response.content.decode()
    assert list(BundleMapping.objects.values_list("bundle_sku", flat=True)) == ["KEEP"]
    assert BundleComponent.objects.count() == 0


@pytest.mark.parametrize("value, reason", [("k" * 50_000, "at most 4000 characters"),
                                           ("[" * 30_000 + "]" * 30_000, "at most 4000 characters")])
def test_an_absurd_credential_is_a_form_error_and_stored_ones_are_kept(admin, value, reason):
    conn = ConnectionFactory()
    before = dict(conn.credentials)
    response = admin.post(reverse("connection_secrets", args=[conn.pk]), {"cred_app_key": value, "webhook_secret": ""})
    assert response.status_code == 400
    assert reason in response.content.decode()
    conn.refresh_from_db()
    assert conn.credentials == before
