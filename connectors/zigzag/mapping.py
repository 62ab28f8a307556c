"""Everything we assume about ZigZag's wire format, in one place.

ZigZag's enterprise API reference is not public (see shared API_NOTES): the token call
and the JWT lifetime are known, endpoint paths, event names and grading values are best
guesses. Every such value lives in ``DEFAULTS`` below and a connection may override any
of them with ``Connection.options``:

    {"paths": {"token": "/v2/token", ...},        # merged over DEFAULTS["paths"]
     "events": {"received": ["parcel.scanned"]},  # our event kind → their names
     "grades": {"A-GRADE": "sellable"},           # their grade → returnsync Grade
     "status_map": {"Awaiting": "approved"},      # their status → Stage (returnsync.stages)
     "mirror_stages": [...], "mirror_return_types": [...],
     "tiktok_connection_id": 3}

The payload readers (``return_from_payload``, ``event_from_payload``) are lenient:
ids may be numbers, quantities strings, names in either snake or camel case.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.utils.dateparse import parse_datetime

from returnsync.choices import Grade, Stage
from returnsync.lifecycle import ItemSnapshot, ReturnSnapshot
from returnsync.stages import connection_stage, normalise

DEFAULTS: dict[str, Any] = {
    "paths": {
        "token": "/token",                # POST {"username", "password"} → {"token", "expires_in"}
        "returns": "/returns",            # POST create (reference unique) · GET list (?updated_since=&page=)
        "return": "/returns/{id}",        # GET one
    },
    # Our event kinds → the names ZigZag sends in ``event``.
    "events": {
        "created": ["return.created"],
        "label": ["return.label_created", "return.tracking_updated"],
        "in_transit": ["return.in_transit"],
        "received": ["return.received", "return.scanned"],
        "graded": ["return.graded", "return.item_graded"],
        "status": ["return.status_changed", "return.updated"],
    },
    # ZigZag grade values → our Grade (normalised: case, spaces and dashes ignored).
    "grades": {
        "SELLABLE": Grade.SELLABLE, "RESELLABLE": Grade.SELLABLE, "A": Grade.SELLABLE, "NEW": Grade.SELLABLE,
        "DAMAGED": Grade.DAMAGED, "B": Grade.DAMAGED, "C": Grade.DAMAGED,
        "DEFECTIVE": Grade.DEFECTIVE, "FAULTY": Grade.DEFECTIVE,
        "WRONG_ITEM": Grade.WRONG_ITEM, "NOT_AS_EXPECTED": Grade.WRONG_ITEM,
        "MISSING": Grade.MISSING, "NOT_RECEIVED": Grade.MISSING,
        "PENDING": Grade.PENDING, "": Grade.PENDING,
    },
    # TikTok returns that need a parcel back, and so a ZigZag return (label for the buyer).
    "mirror_return_types": ["RETURN_AND_REFUND", "REPLACEMENT"],
    "mirror_stages": [Stage.APPROVED, Stage.LABEL_CREATED, Stage.IN_TRANSIT],
    # JWT lifetime is 30 minutes; re-issue this long before it runs out.
    "token_margin_seconds": 120,
    "token_ttl_seconds": 1800,
    "signature_header": "X-ZigZag-Signature",
}
WEBHOOK_SIGNATURE_PREFIX = "sha256="

# ZigZag return statuses (seen: Pending approval, Approved, Rejected, Received, Refunded,
# Exchange; the rest are guesses) → the canonical stage. A connection overrides entries
# with ``options["status_map"]``.
STATUS_TABLE: dict[str, Stage] = {
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


def config(connection) -> dict[str, Any]:
    """DEFAULTS with this connection's ``options`` overrides merged in."""
    options = (connection.options or {}) if connection is not None else {}
    merged = {key: (dict(value) if isinstance(value, dict) else value) for key, value in DEFAULTS.items()}
    for key in ("paths", "events", "grades"):
        extra = options.get(key)
        if isinstance(extra, dict):
            if key == "grades":
                merged[key].update({normalise(k): v for k, v in extra.items()})
            else:
                merged[key].update(extra)
    for key in ("mirror_return_types", "mirror_stages", "token_margin_seconds", "signature_header"):
        if key in options:
            merged[key] = options[key]
    return merged


def path(connection, name: str, **params) -> str:
    return config(connection)["paths"][name].format(**params)


def event_kind(connection, event_name: str) -> str:
    """Their event name → our kind ('received', 'graded', ...), or '' when unknown."""
    wanted = normalise(event_name)
    for kind, names in config(connection)["events"].items():
        if wanted in {normalise(n) for n in ([names] if isinstance(names, str) else names)}:
            return kind
    return ""


def grade_for(connection, raw_grade: Any) -> Grade | None:
    """Their grade → our Grade; None when the value is not in the table (a row error)."""
    key = normalise(str(raw_grade or ""))
    value = config(connection)["grades"].get(key)
    return Grade(value) if value in Grade.values else None


# --- lenient readers -----------------------------------------------------------------------


def as_str(value: Any, limit: int = 64) -> str:
    return "" if value is None else str(value).strip()[:limit]


def as_int(value: Any) -> int | None:
    try:
        return int(str(value).strip())
    except (TypeError, ValueError):
        return None


def as_decimal(value: Any) -> Decimal | None:
    try:
        return Decimal(str(value)) if value not in (None, "") else None
    except (InvalidOperation, ValueError):
        return None


def as_datetime(value: Any) -> datetime | None:
    """Unix seconds (a number or a digit string) or ISO-8601 → aware UTC; None for anything
    that is no time we can hold (``Infinity``, ``1e20``, a 20-digit string, ``2026-13-45``)."""
    if value in (None, "") or isinstance(value, bool):
        return None
    try:
        if isinstance(value, (int, float)) or (isinstance(value, str) and value.strip().isdigit()):
            return datetime.fromtimestamp(int(value), tz=UTC)
        parsed = parse_datetime(str(value).strip())
    except (OverflowError, OSError, ValueError):
        return None
    if parsed is not None and parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _get(data: dict, *names: str, default=None):
    for name in names:
        if name in data and data[name] not in (None, ""):
            return data[name]
    return default


def return_from_payload(connection, data: dict) -> ReturnSnapshot:
    """One ZigZag return object → a ``ReturnSnapshot``. Raises ValueError without an id."""
    if not isinstance(data, dict):
        raise ValueError("return is not an object")  # noqa: TRY004 (a bad payload, not a bug)
    external_id = as_str(_get(data, "id", "return_id", "returnId"))
    if not external_id:
        raise ValueError("return without id")
    items = []
    for n, item in enumerate(_get(data, "items", "lines", default=[]) or []):
        if not isinstance(item, dict):
            raise ValueError(f"item {n + 1} is not an object")  # noqa: TRY004
        raw_grade = as_str(_get(item, "grade", "condition", default=""))
        received = _get(item, "received_quantity", "receivedQuantity", "quantity_received")
        items.append(ItemSnapshot(
            item_id=as_str(_get(item, "id", "item_id", "itemId", default=str(n + 1))),
            item_reference=as_str(_get(item, "item_reference", "itemReference", "reference", default="")),
            sku=as_str(_get(item, "sku", default=""), 100),
            name=as_str(_get(item, "name", "product_name", default=""), 300),
            quantity=max(as_int(_get(item, "quantity", "expected_quantity", default=1)) or 1, 1),
            received_quantity=None if received is None else max(as_int(received) or 0, 0),
            raw_grade=raw_grade,
            grade=grade_for(connection, raw_grade),
            unit_price=as_decimal(_get(item, "unit_price", "unitPrice", "price")),
        ))
    raw_status = as_str(_get(data, "status", default=""))
    return ReturnSnapshot(
        external_id=external_id,
        reference=as_str(_get(data, "reference", "external_reference", "externalReference", default="")),
        order_reference=as_str(_get(data, "order_reference", "orderReference", "order_id", default="")),
        raw_status=raw_status,
        stage=connection_stage(connection, raw_status) if raw_status else Stage.UNMAPPED,
        tracking_number=as_str(_get(data, "tracking_number", "trackingNumber", default=""), 100),
        carrier=as_str(_get(data, "carrier", default=""), 100),
        location=as_str(_get(data, "location", "warehouse", "warehouse_code", default="")),
        currency=as_str(_get(data, "currency", default=""), 3).upper(),
        created_at=as_datetime(_get(data, "created_at", "createdAt")),
        updated_at=as_datetime(_get(data, "updated_at", "updatedAt")),
        items=items,
        raw=data,
        authorized_refund=as_decimal(_get(data, "refund_amount", "refundAmount", "authorized_refund")),
        # The warehouse's own times (field names assumed): not the snapshot's updated_at, which
        # moves with every later change.
        received_at=as_datetime(_get(data, "received_at", "receivedAt", "scanned_at")),
        inspected_at=as_datetime(_get(data, "graded_at", "gradedAt", "inspected_at")),
    )


@dataclass
class Event:
    event_id: str
    name: str
    kind: str
    return_id: str
    reference: str
    occurred_at: datetime | None
    snapshot: dict | None  # the full return, when the event carries it


def event_from_payload(connection, payload: dict) -> Event:
    """One webhook body → ``Event``. Raises ValueError when it cannot name a return."""
    if not isinstance(payload, dict):
        raise ValueError("body is not a JSON object")  # noqa: TRY004
    name = as_str(_get(payload, "event", "type", "event_type", default=""))
    snapshot = payload.get("return") if isinstance(payload.get("return"), dict) else None
    return_id = as_str(_get(payload, "return_id", "returnId", default="")) or (
        as_str(_get(snapshot, "id", "return_id", default="")) if snapshot else "")
    reference = as_str(_get(payload, "reference", default="")) or (
        as_str(_get(snapshot, "reference", default="")) if snapshot else "")
    if not return_id and not reference:
        raise ValueError("event names no return")
    return Event(
        event_id=as_str(_get(payload, "event_id", "eventId", "id", default=""), 150),
        name=name, kind=event_kind(connection, name), return_id=return_id, reference=reference,
        occurred_at=as_datetime(_get(payload, "occurred_at", "occurredAt", "timestamp")),
        snapshot=snapshot,
    )


def create_payload(*, reference: str, order_reference: str, currency: str, items: list[dict],
                   customer: dict | None = None) -> dict:
    """Body of the create-return call. ``reference`` is the TikTok return id: ZigZag keeps
    it unique, so re-sending after a lost answer finds the same return."""
    return {"reference": reference, "order_reference": order_reference, "currency": currency,
            "items": items, "customer": customer or {}}
