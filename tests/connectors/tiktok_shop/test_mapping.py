"""TikTok payload → canonical rows: lenient types, open enums, deadlines, bundles."""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

from connectors.tiktok_shop.mapping import (
    as_datetime,
    as_decimal,
    as_str,
    next_action_of,
    order_to_canonical,
    return_to_canonical,
    webhook_subject,
)
from returnsync.choices import Stage

T0 = 1_790_000_000


def test_ids_are_strings_whatever_type_they_arrive_as():
    assert as_str(577087123456789012) == "577087123456789012"
    assert as_str("577087123456789012 ") == "577087123456789012"
    assert as_str(12.0) == "12"
    assert as_str(None) == ""
    assert return_to_canonical({"return_id": 4035, "order_id": 5770})["return_id"] == "4035"


def test_amounts_are_decimals_from_strings_numbers_or_nothing():
    assert as_decimal("24.00") == Decimal("24.00")
    assert as_decimal(24) == Decimal("24.00")
    assert as_decimal(19.99) == Decimal("19.99")
    assert as_decimal("1,024.5") == Decimal("1024.50")
    assert as_decimal("") is None
    assert as_decimal("n/a") is None
    assert as_decimal(None) is None
    assert as_decimal("NaN") is None


def test_times_are_aware_utc_from_seconds_milliseconds_strings_or_iso():
    expected = datetime.fromtimestamp(T0, tz=UTC)
    assert as_datetime(T0) == expected
    assert as_datetime(str(T0)) == expected
    assert as_datetime(T0 * 1000) == expected
    assert as_datetime("2026-09-21T14:13:20Z") == datetime(2026, 9, 21, 14, 13, 20, tzinfo=UTC)
    assert as_datetime(0) is None
    assert as_datetime("soon") is None
    assert as_datetime(None) is None


def test_next_action_is_the_one_with_the_earliest_deadline():
    payload = {"seller_next_action_response": [
        {"action": "SELLER_RESPOND_REFUND", "deadline": T0 + 7200},
        {"action": "SELLER_RESPOND_RECEIVE_PACKAGE", "deadline": str(T0 + 3600)},
        {"action": "SOMETHING_NEW"},
    ]}
    action, deadline, actions = next_action_of(payload)
    assert action == "SELLER_RESPOND_RECEIVE_PACKAGE"
    assert deadline == datetime.fromtimestamp(T0 + 3600, tz=UTC)
    assert actions == ["SELLER_RESPOND_REFUND", "SELLER_RESPOND_RECEIVE_PACKAGE", "SOMETHING_NEW"]
    assert next_action_of({"seller_next_action_response": None}) == ("", None, [])


def test_return_maps_every_field_and_lines_one_per_unit():
    data = return_to_canonical({
        "return_id": "4035", "order_id": 5770, "return_type": "RETURN_AND_REFUND",
        "return_status": "BUYER_SHIPPED_ITEM", "role": "BUYER", "return_reason": "not_as_described",
        "return_tracking_number": "1Z999", "return_provider_name": "UPS",
        "create_time": T0, "update_time": str(T0 + 60),
        "seller_next_action_response": [{"action": "SELLER_RESPOND_RECEIVE_PACKAGE", "deadline": T0 + 3600}],
        "refund_amount": {"currency": "usd", "refund_total": "48.00"},
        "return_line_items": [
            {"return_line_item_id": 1, "order_line_item_id": 11, "sku_id": 7, "seller_sku": "TEE-M",
             "product_name": "Tee", "refund_amount": {"currency": "USD", "refund_total": "24.00"}},
            {"return_line_item_id": "2", "order_line_item_id": "12", "sku_id": "7", "seller_sku": "TEE-M",
             "refund_amount": {"refund_total": 24}},
        ],
    })
    assert data["order_ref"] == "5770"
    assert data["stage"] == Stage.RECEIVED  # shipped + "respond to received package" = received
    assert data["refund_total"] == Decimal("48.00") and data["currency"] == "USD"
    assert data["next_action"] == "SELLER_RESPOND_RECEIVE_PACKAGE"
    assert data["source_updated_at"] == datetime.fromtimestamp(T0 + 60, tz=UTC)
    assert [line["line_id"] for line in data["lines"]] == ["1", "2"]
    assert data["lines"][1]["refund_amount"] == Decimal("24.00") and data["lines"][1]["currency"] == "USD"


def test_unknown_status_is_kept_raw_and_unmapped_and_reject_spellings_agree():
    assert return_to_canonical({"return_id": "1", "return_status": "BRAND_NEW_STATUS"})["stage"] == Stage.UNMAPPED
    assert return_to_canonical({"return_id": "1", "return_status": "BRAND_NEW_STATUS"})["raw_status"] == (
        "BRAND_NEW_STATUS")
    for spelling in ("REFUND_OR_RETURN_REQUEST_REJECT", "RETURN_OR_REFUND_REQUEST_REJECTED"):
        assert return_to_canonical({"return_id": "1", "return_status": spelling})["stage"] == Stage.REJECTED


def test_garbage_shapes_do_not_raise():
    data = return_to_canonical({"return_id": "1", "refund_amount": "oops", "return_line_items": "x",
                                "seller_next_action_response": [None, 3], "update_time": "later"})
    assert data["lines"] == [] and data["refund_total"] is None and data["source_updated_at"] is None
    assert order_to_canonical({"id": 1, "line_items": [None, {"id": 2, "sale_price": "-3"}]})["lines"][1][
        "sale_price"] == Decimal("0.00")
    long = return_to_canonical({"return_id": "1", "return_reason": "x" * 1000})
    assert len(long["reason"]) == 300


def test_order_lines_bundle_components_and_postal_code():
    data = order_to_canonical({
        "id": 5770, "status": "DELIVERED", "create_time": T0, "update_time": T0 + 5,
        "payment": {"currency": "USD"}, "recipient_address": {"postal_code": "94107"},
        "line_items": [
            {"id": "a", "sku_id": 1, "seller_sku": "TEE", "product_id": 9, "sale_price": "24.00"},
            {"id": "a", "sku_id": 1, "seller_sku": "TEE", "sale_price": "24.00"},  # duplicate line id
            {"id": "b", "sku_id": 2, "seller_sku": "KIT", "sale_price": 30, "combined_listing_skus": [
                {"sku_id": 21, "sku_count": "2", "product_id": 8, "seller_sku": "KIT-A"},
                {"sku_id": 22, "sku_count": 0, "seller_sku": "KIT-B"},
            ]},
        ],
    })
    assert data["order_id"] == "5770" and data["buyer_postal_code"] == "94107" and data["currency"] == "USD"
    assert [line["line_id"] for line in data["lines"]] == ["a", "b"]
    assert data["lines"][1]["sale_price"] == Decimal("30.00")
    assert data["lines"][1]["components"] == [
        {"sku_id": "21", "seller_sku": "KIT-A", "product_id": "8", "quantity": 2},
        {"sku_id": "22", "seller_sku": "KIT-B", "product_id": "", "quantity": 1},
    ]
    # No address while UNPAID/ON_HOLD: an empty postal code, not an error.
    assert order_to_canonical({"id": 1, "status": "UNPAID"})["buyer_postal_code"] == ""


def test_webhook_subject():
    assert webhook_subject({"type": 12, "data": {"return_id": 4035, "order_id": 5770}}) == ("12", "4035")
    assert webhook_subject({"type": "1", "data": {"order_id": "5770"}}) == ("1", "5770")
    assert webhook_subject({}) == ("", "")
