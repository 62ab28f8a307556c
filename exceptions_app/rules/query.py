"""Query helpers shared by the rules: scoping, the columns each side contributes, and
turning one faulty row (a ``values()`` dict) into a JSON-safe Finding.

A rule's ``detect`` is one ``values()`` query that returns only the faulty rows; the
helpers here only shape those rows, so no rule loops over every return.
"""
from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal
from typing import Any

from django.db.models import QuerySet

from exceptions_app.choices import SubjectKind
from exceptions_app.rules.base import Finding, Scope
from returnsync.choices import Stage

# The return is over on that side: nothing more will move.
TERMINAL_STAGES = (Stage.REFUNDED, Stage.CLOSED, Stage.REJECTED, Stage.CANCELLED)
# TikTok has not registered the parcel as back (or not acted on it).
UNRETURNED_STAGES = (Stage.REQUESTED, Stage.APPROVED, Stage.LABEL_CREATED, Stage.IN_TRANSIT, Stage.RECEIVED)

MR = "marketplace_return__"
# A portal return and the TikTok return it is linked to, as values() columns.
PORTAL_COLUMNS = (
    "id", "external_id", "order_ref", "return_ref", "stage", "raw_status", "tracking_number", "carrier",
    "authorized_refund", "currency", "received_at", "inspected_at", "source_created_at", "connection_id",
    "connection__kind", "marketplace_return_id", "order__buyer_postal_code", "partial_refund_amount",
    "release_state", "expected_refund",
)
TIKTOK_COLUMNS = (
    "return_id", "order_ref", "stage", "raw_status", "next_action", "next_action_deadline", "tracking_number",
    "carrier", "refund_total", "currency", "return_type", "source_created_at",
)
LINKED_TIKTOK_COLUMNS = tuple(MR + name for name in TIKTOK_COLUMNS)


def jsonable(value: Any) -> Any:
    """Amounts as strings, timestamps as ISO 8601: evidence compares equal after a JSON round trip."""
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, dict):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    return value


def scoped(queryset: QuerySet, scope: Scope, field: str = "order_ref") -> QuerySet:
    """Restrict to the scope's TikTok orders (no-op for the full pass). Drops the model's
    default ordering: detection needs none, and it would steer the planner to that index."""
    queryset = queryset.order_by()
    if scope.is_full:
        return queryset
    return queryset.filter(**{f"{field}__in": sorted(scope.order_refs)})


def tiktok_side(row: dict, prefix: str = MR) -> dict | None:
    """What TikTok said, from the row's ``<prefix><column>`` values (None: no TikTok return)."""
    if row.get(prefix + "return_id") is None:
        return None
    return jsonable({name: row.get(prefix + name) for name in TIKTOK_COLUMNS})


def portal_side(row: dict, prefix: str = "") -> dict | None:
    """What the portal said."""
    if row.get(prefix + "id") is None:
        return None
    return jsonable({
        "system": row.get(prefix + "connection__kind"),
        "portal_return_id": row.get(prefix + "external_id"),
        "order_ref": row.get(prefix + "order_ref"),
        "return_ref": row.get(prefix + "return_ref"),
        "stage": row.get(prefix + "stage"),
        "raw_status": row.get(prefix + "raw_status"),
        "tracking_number": row.get(prefix + "tracking_number"),
        "carrier": row.get(prefix + "carrier"),
        "authorized_refund": row.get(prefix + "authorized_refund"),
        "currency": row.get(prefix + "currency"),
        "received_at": row.get(prefix + "received_at"),
        "inspected_at": row.get(prefix + "inspected_at"),
        "created_at": row.get(prefix + "source_created_at"),
        "refund_release": row.get(prefix + "release_state"),
        "expected_refund": row.get(prefix + "expected_refund"),
    })


def tracking_numbers(*numbers: str | None) -> str:
    seen: list[str] = []
    for number in numbers:
        if number and number not in seen:
            seen.append(number)
    return " ".join(seen)[:250]


def portal_finding(rule, row: dict, *, title: str, computed: dict | None = None, prefix: str = "",
                   subject_kind: SubjectKind = SubjectKind.PORTAL_RETURN, subject_id: int | None = None,
                   fingerprint_values: Any = None, extra: dict | None = None, **anchors: Any) -> Finding:
    """A Finding about a portal return (or one of its lines) and the TikTok return linked to it."""
    tiktok = tiktok_side(row, prefix + MR)
    evidence = {"tiktok": tiktok, "portal": portal_side(row, prefix), "computed": jsonable(computed or {})}
    if extra:
        evidence.update(jsonable(extra))
    return Finding(
        subject_kind=subject_kind,
        subject_id=subject_id if subject_id is not None else row[prefix + "id"],
        title=title[:300],
        evidence=evidence,
        order_ref=row.get(prefix + "order_ref") or "",
        return_ref=row.get(prefix + "return_ref") or (tiktok or {}).get("return_id") or "",
        portal_ref=row.get(prefix + "external_id") or "",
        tracking_numbers=tracking_numbers(row.get(prefix + "tracking_number"), (tiktok or {}).get("tracking_number")),
        buyer_postal_code=row.get(prefix + "order__buyer_postal_code") or "",
        system=row.get(prefix + "connection__kind") or "",
        connection_id=row.get(prefix + "connection_id"),
        marketplace_return_id=row.get(prefix + "marketplace_return_id"),
        portal_return_id=row.get(prefix + "id"),
        fingerprint_values=jsonable(fingerprint_values) if fingerprint_values is not None else None,
        **anchors,
    )
