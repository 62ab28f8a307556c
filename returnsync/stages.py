"""Raw status → canonical stage, one table per system.

Raw statuses are stored as they came; the stage is derived here. Lookups are
lenient (case, spaces, dashes and a trailing ``ED`` on TikTok's reject spelling
are ignored) because real APIs are loose with enum spellings. An unknown status
maps to ``Stage.UNMAPPED`` rather than failing: the row is still stored and the
badge shows someone has a table to extend.

The tables for systems whose API is not public (ZigZag) are best guesses from
what is documented; a connection may override entries with
``options["status_map"] = {"<raw status>": "<stage>"}``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from returnsync.choices import Stage, System

TIKTOK_SHOP: dict[str, Stage] = {
    "RETURN_OR_REFUND_REQUEST_PENDING": Stage.REQUESTED,
    "REFUND_OR_RETURN_REQUEST_REJECT": Stage.REJECTED,
    "RETURN_OR_REFUND_REQUEST_REJECT": Stage.REJECTED,
    "AWAITING_BUYER_SHIP": Stage.APPROVED,
    "BUYER_SHIPPED_ITEM": Stage.IN_TRANSIT,
    "REJECT_RECEIVE_PACKAGE": Stage.REJECTED,
    "RETURN_OR_REFUND_REQUEST_SUCCESS": Stage.REFUNDED,
    "RETURN_OR_REFUND_REQUEST_CANCEL": Stage.CANCELLED,
    "RETURN_OR_REFUND_REQUEST_COMPLETE": Stage.CLOSED,
    "AWAITING_BUYER_RESPONSE": Stage.REQUESTED,
    "REPLACEMENT_REQUEST_PENDING": Stage.REQUESTED,
    "REPLACEMENT_REQUEST_REJECT": Stage.REJECTED,
    "REPLACEMENT_REQUEST_REFUND_SUCCESS": Stage.REFUNDED,
    "REPLACEMENT_REQUEST_CANCEL": Stage.CANCELLED,
    "REPLACEMENT_REQUEST_COMPLETE": Stage.CLOSED,
}

# TikTok has no "received" status: receipt shows as this next action after BUYER_SHIPPED_ITEM.
TIKTOK_RECEIVED_ACTION = "SELLER_RESPOND_RECEIVE_PACKAGE"

ZIGZAG: dict[str, Stage] = {
    "PENDING_APPROVAL": Stage.REQUESTED,
    "APPROVED": Stage.APPROVED,
    "LABEL_CREATED": Stage.LABEL_CREATED,
    "IN_TRANSIT": Stage.IN_TRANSIT,
    "RECEIVED": Stage.RECEIVED,
    "GRADED": Stage.INSPECTED,
    "INSPECTED": Stage.INSPECTED,
    "REFUNDED": Stage.REFUNDED,
    "EXCHANGE": Stage.CLOSED,
    "CLOSED": Stage.CLOSED,
    "REJECTED": Stage.REJECTED,
    "CANCELLED": Stage.CANCELLED,
}

RETURNGO: dict[str, Stage] = {
    "PENDING": Stage.REQUESTED,
    "APPROVED": Stage.APPROVED,
    "RECEIVED": Stage.RECEIVED,
    "VALIDATED": Stage.INSPECTED,
    "DONE": Stage.CLOSED,
    "REJECTED": Stage.REJECTED,
    "CANCELED": Stage.CANCELLED,
    "CANCELLED": Stage.CANCELLED,
}

# ReturnGo shipment statuses refine an Approved RMA.
RETURNGO_SHIPMENT: dict[str, Stage] = {
    "PENDING": Stage.APPROVED,
    "LABELCREATED": Stage.LABEL_CREATED,
    "SHIPPED": Stage.IN_TRANSIT,
    "RECEIVED": Stage.RECEIVED,
    "VALIDATED": Stage.INSPECTED,
    "CANCELED": Stage.CANCELLED,
}

LOOP: dict[str, Stage] = {
    "OPEN": Stage.APPROVED,
    "REVIEW": Stage.REQUESTED,
    "CLOSED": Stage.CLOSED,
    "CANCELLED": Stage.CANCELLED,
    "EXPIRED": Stage.CANCELLED,
}

TABLES: dict[str, dict[str, Stage]] = {
    System.TIKTOK_SHOP: TIKTOK_SHOP,
    System.ZIGZAG: ZIGZAG,
    System.RETURNGO: RETURNGO,
    System.LOOP: LOOP,
    System.PIPE17: {},
}
SHIPMENT_TABLES: dict[str, dict[str, Stage]] = {System.RETURNGO: RETURNGO_SHIPMENT}

_SEPARATORS = re.compile(r"[\s\-]+")


def normalise(raw_status: str) -> str:
    return _SEPARATORS.sub("_", str(raw_status).strip()).upper()


def stage_for(system: str, raw_status: str, overrides: Mapping[str, str] | None = None) -> Stage:
    """The canonical stage of ``raw_status`` in ``system``'s table (or UNMAPPED)."""
    key = normalise(raw_status)
    if overrides:
        for raw, stage in overrides.items():
            if normalise(raw) == key and stage in Stage.values:
                return Stage(stage)
    table = TABLES[system]
    if key in table:
        return table[key]
    for suffix in ("ED", "LED"):  # REQUEST_REJECTED → REQUEST_REJECT, REQUEST_CANCELLED → REQUEST_CANCEL
        if key.endswith(suffix) and key[: -len(suffix)] in table:
            return table[key[: -len(suffix)]]
    return Stage.UNMAPPED


def connection_stage(connection, raw_status: str) -> Stage:
    """The stage of a raw status for this connection: its own overrides first, then its system's table."""
    return stage_for(connection.kind, raw_status, (connection.options or {}).get("status_map"))


def shipment_stage(system: str, raw_status: str) -> Stage:
    """Portals that track the parcel separately (ReturnGo shipments) refine an approved return."""
    table = SHIPMENT_TABLES.get(system, {})
    return table.get(normalise(raw_status), Stage.UNMAPPED)


def tiktok_stage(raw_status: str, next_actions: list[str] | tuple[str, ...] = ()) -> Stage:
    """TikTok's stage, reading receipt from the next action the seller owes."""
    stage = stage_for(System.TIKTOK_SHOP, raw_status)
    if stage == Stage.IN_TRANSIT and TIKTOK_RECEIVED_ACTION in next_actions:
        return Stage.RECEIVED
    return stage
