"""Raw statuses from every system land on the canonical stage a person would expect."""
from __future__ import annotations

import pytest

from connectors.tiktok_shop import mapping as tiktok_mapping
from connectors.tiktok_shop.mapping import tiktok_stage
from returnsync import stages
from returnsync.choices import Stage, System
from returnsync.stages import stage_for
from tests.factories import PortalConnectionFactory

TIKTOK = System.TIKTOK_SHOP


TIKTOK_EXPECTED = [
    ("RETURN_OR_REFUND_REQUEST_PENDING", Stage.REQUESTED),
    ("AWAITING_BUYER_RESPONSE", Stage.REQUESTED),
    ("REPLACEMENT_REQUEST_PENDING", Stage.REQUESTED),
    ("AWAITING_BUYER_SHIP", Stage.APPROVED),
    ("BUYER_SHIPPED_ITEM", Stage.IN_TRANSIT),
    ("RETURN_OR_REFUND_REQUEST_REJECT", Stage.REJECTED),
    ("RETURN_OR_REFUND_REQUEST_REJECTED", Stage.REJECTED),  # the spelling the API also sends
    ("REFUND_OR_RETURN_REQUEST_REJECT", Stage.REJECTED),
    ("REPLACEMENT_REQUEST_REJECT", Stage.REJECTED),
    ("REPLACEMENT_REQUEST_REJECTED", Stage.REJECTED),
    ("REJECT_RECEIVE_PACKAGE", Stage.REJECTED),
    ("RETURN_OR_REFUND_REQUEST_SUCCESS", Stage.REFUNDED),
    ("REPLACEMENT_REQUEST_REFUND_SUCCESS", Stage.REFUNDED),
    ("RETURN_OR_REFUND_REQUEST_CANCEL", Stage.CANCELLED),
    ("REPLACEMENT_REQUEST_CANCEL", Stage.CANCELLED),
    ("RETURN_OR_REFUND_REQUEST_COMPLETE", Stage.CLOSED),
    ("REPLACEMENT_REQUEST_COMPLETE", Stage.CLOSED),
]


@pytest.mark.parametrize(("raw", "expected"), TIKTOK_EXPECTED)
def test_tiktok_status(raw, expected):
    assert stage_for(TIKTOK, raw) == expected


def test_every_tiktok_status_in_the_table_has_an_expected_stage_here():
    assert set(tiktok_mapping.STATUS_TABLE) - {raw for raw, _ in TIKTOK_EXPECTED} == set()


@pytest.mark.parametrize(
    ("system", "raw", "expected"),
    [
        (System.ZIGZAG, "Pending approval", Stage.REQUESTED),
        (System.ZIGZAG, "Approved", Stage.APPROVED),
        (System.ZIGZAG, "Label created", Stage.LABEL_CREATED),
        (System.ZIGZAG, "In transit", Stage.IN_TRANSIT),
        (System.ZIGZAG, "Received", Stage.RECEIVED),
        (System.ZIGZAG, "Graded", Stage.INSPECTED),
        (System.ZIGZAG, "Refunded", Stage.REFUNDED),
        (System.ZIGZAG, "Exchange", Stage.CLOSED),
        (System.ZIGZAG, "Rejected", Stage.REJECTED),
        (System.ZIGZAG, "Cancelled", Stage.CANCELLED),
    ],
)
def test_portal_status(system, raw, expected):
    assert stage_for(system, raw) == expected


@pytest.mark.parametrize(
    ("system", "raw", "expected"),
    [
        (TIKTOK, "awaiting-buyer-ship", Stage.APPROVED),
        (TIKTOK, "  Buyer Shipped Item ", Stage.IN_TRANSIT),
        (TIKTOK, "return_or_refund_request_rejected", Stage.REJECTED),
        (System.ZIGZAG, "PENDING-APPROVAL", Stage.REQUESTED),
        (System.ZIGZAG, "pending   approval", Stage.REQUESTED),
    ],
)
def test_lookup_ignores_case_spaces_and_dashes(system, raw, expected):
    assert stage_for(system, raw) == expected


@pytest.mark.parametrize(
    ("system", "raw"),
    [
        (TIKTOK, "SOMETHING_TIKTOK_ADDED_LAST_WEEK"),
        (TIKTOK, ""),
        (TIKTOK, "SHIPPED"),  # another system's word is not TikTok's
        (System.ZIGZAG, "On hold"),
        ("no_such_system", "RECEIVED"),  # no connector installed: everything is unmapped
    ],
)
def test_unknown_status_is_unmapped_not_an_error(system, raw):
    assert stage_for(system, raw) == Stage.UNMAPPED


@pytest.mark.parametrize(
    ("system", "table"),
    list(stages.tables().items()),
    ids=[str(system) for system in stages.tables()],
)
def test_every_table_key_is_normalised_and_found(system, table):
    for raw, stage in table.items():
        assert stages.normalise(raw) == raw
        assert stage_for(system, raw) == stage
        assert stage_for(system, raw.lower().replace("_", " ")) == stage


@pytest.mark.django_db
def test_connection_overrides_map_its_own_statuses():
    portal = PortalConnectionFactory(
        options={"status_map": {"On hold": "requested", "Approved": "label_created", "Graded": "not-a-stage"}}
    )
    overrides = portal.options["status_map"]

    assert stage_for(portal.kind, "ON-HOLD", overrides) == Stage.REQUESTED  # an added status
    assert stage_for(portal.kind, "approved", overrides) == Stage.LABEL_CREATED  # a replaced one
    assert stage_for(portal.kind, "Graded", overrides) == Stage.INSPECTED  # an invalid override is ignored
    assert stage_for(portal.kind, "Received", overrides) == Stage.RECEIVED  # the rest of the table holds
    assert stage_for(portal.kind, "Approved") == Stage.APPROVED  # another connection is unaffected


@pytest.mark.parametrize(
    ("raw", "next_actions", "expected"),
    [
        ("BUYER_SHIPPED_ITEM", ["SELLER_RESPOND_RECEIVE_PACKAGE"], Stage.RECEIVED),
        ("buyer shipped item", ("SELLER_RESPOND_RECEIVE_PACKAGE",), Stage.RECEIVED),
        ("BUYER_SHIPPED_ITEM", [], Stage.IN_TRANSIT),
        ("BUYER_SHIPPED_ITEM", ["SELLER_AGREE_REFUND"], Stage.IN_TRANSIT),
        # the receipt action only refines an in-transit return
        ("AWAITING_BUYER_SHIP", ["SELLER_RESPOND_RECEIVE_PACKAGE"], Stage.APPROVED),
        ("RETURN_OR_REFUND_REQUEST_SUCCESS", ["SELLER_RESPOND_RECEIVE_PACKAGE"], Stage.REFUNDED),
    ],
)
def test_tiktok_receipt_is_read_from_the_next_action(raw, next_actions, expected):
    assert tiktok_stage(raw, next_actions) == expected


def test_every_stage_is_reachable_from_some_system_table():
    reachable = {stage for table in stages.tables().values() for stage in table.values()}
    assert set(Stage) - reachable == {Stage.UNMAPPED}


def test_double_l_cancelled_spelling_maps_like_cancel():
    assert stage_for(System.TIKTOK_SHOP, "RETURN_OR_REFUND_REQUEST_CANCELLED") == Stage.CANCELLED


@pytest.mark.django_db
def test_connection_stage_uses_the_connections_own_overrides():
    from returnsync.stages import connection_stage
    from tests.factories import PortalConnectionFactory

    plain = PortalConnectionFactory()
    custom = PortalConnectionFactory(options={"status_map": {"Awaiting drop-off": "approved"}})
    assert connection_stage(plain, "Awaiting drop-off") == Stage.UNMAPPED
    assert connection_stage(custom, "awaiting drop-off") == Stage.APPROVED
    assert connection_stage(custom, "Received") == Stage.RECEIVED
