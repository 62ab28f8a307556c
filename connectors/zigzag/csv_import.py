"""Warehouse receipt/grading CSV: the fallback when ZigZag's webhooks cannot be used.

Columns (header row required; ``template_csv()`` gives a file to fill in):

    zigzag_return_id, tiktok_return_id, sku, received_quantity, grade, location

One of the two return ids names the return; ``sku`` (or the ZigZag item id) names the
item; ``received_quantity`` (0..expected) and/or ``grade`` (any value of the
connection's grade map, e.g. SELLABLE, DAMAGED, MISSING) say what happened. Every row is
validated and reported with its reason; the valid rows are applied through
``returnsync.lifecycle.portal_lines_record``, exactly like a webhook. Values are absolute and the
file's digest is recorded (``InboundEvent``), so uploading the same file again changes
nothing.
"""
from __future__ import annotations

import csv
import hashlib
import io
from dataclasses import dataclass, field

from django.db import IntegrityError, transaction
from django.utils import timezone

from connectors.zigzag import mapping
from returnsync.choices import InboundStatus, System
from returnsync.models import Connection, InboundEvent, PortalReturn

COLUMNS = ("zigzag_return_id", "tiktok_return_id", "sku", "received_quantity", "grade", "location")
MAX_BYTES = 2 * 1024 * 1024
MAX_ROWS = 5000


class CsvFileError(ValueError):
    """The file as a whole cannot be read (not a CSV, no header, too big)."""


@dataclass
class RowResult:
    line: int
    ok: bool
    message: str
    return_ref: str = ""
    sku: str = ""


@dataclass
class CsvResult:
    rows: list[RowResult] = field(default_factory=list)
    applied_returns: int = 0
    duplicate_file: bool = False

    @property
    def ok_count(self) -> int:
        return sum(1 for r in self.rows if r.ok)

    @property
    def error_count(self) -> int:
        return sum(1 for r in self.rows if not r.ok)


def template_csv() -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    writer.writerow(["ZZ000000123", "", "RS-01-0", "1", "SELLABLE", "ZZ-LDN-1"])
    writer.writerow(["", "4035551234567890", "RS-02-1", "0", "MISSING", ""])
    return out.getvalue()


def _read(content: bytes) -> list[dict]:
    if len(content) > MAX_BYTES:
        raise CsvFileError(f"file is larger than {MAX_BYTES // 1024 // 1024} MB")
    try:
        text = content.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise CsvFileError("file is not UTF-8 text") from None
    reader = csv.DictReader(io.StringIO(text))
    header = [h.strip().lower() for h in (reader.fieldnames or [])]
    if "sku" not in header or not ({"zigzag_return_id", "tiktok_return_id"} & set(header)):
        raise CsvFileError("header must name sku and zigzag_return_id or tiktok_return_id "
                           "(download the template)")
    reader.fieldnames = header
    rows = []
    try:
        for row in reader:
            rows.append({k: (v or "").strip() for k, v in row.items() if k})
            if len(rows) > MAX_ROWS:
                raise CsvFileError(f"more than {MAX_ROWS} rows")
    except csv.Error as exc:
        raise CsvFileError(f"not a readable CSV: {exc}") from None
    if not rows:
        raise CsvFileError("no rows under the header")
    return rows


def csv_import(*, connection: Connection, content: bytes, filename: str = "") -> CsvResult:
    """Validate every row, apply the valid ones, report each row. Raises ``CsvFileError``."""
    from returnsync.lifecycle import LineUpdate, portal_lines_record

    rows = _read(content)
    result = CsvResult()
    digest = hashlib.sha256(content).hexdigest()
    updates: dict[int, tuple[PortalReturn, list, str]] = {}
    seen: set[tuple[int, str]] = set()
    for n, row in enumerate(rows, start=2):  # line 1 is the header
        zz_id, tt_id, sku = row.get("zigzag_return_id", ""), row.get("tiktok_return_id", ""), row.get("sku", "")
        ref = zz_id or tt_id

        def error(message: str, n=n, ref=ref, sku=sku) -> None:
            result.rows.append(RowResult(n, False, message, ref, sku))

        if not ref:
            error("no zigzag_return_id or tiktok_return_id")
            continue
        qs = PortalReturn.objects.filter(connection=connection)
        pr = qs.filter(external_id=zz_id).first() if zz_id else qs.filter(return_ref=tt_id).first()
        if pr is None:
            error(f"no ZigZag return {ref} on {connection.name}")
            continue
        if not sku:
            error("sku is empty")
            continue
        lines = [ln for ln in pr.lines.all() if sku in (ln.sku, ln.line_id)]
        if len(lines) != 1:
            error(f"{sku} is not an item of {ref}" if not lines else f"{sku} is on {ref} {len(lines)} times: "
                  "use the ZigZag item id")
            continue
        line = lines[0]
        qty_raw, grade_raw = row.get("received_quantity", ""), row.get("grade", "")
        qty = None
        if qty_raw:
            qty = mapping.as_int(qty_raw)
            if qty is None or not 0 <= qty <= line.expected_quantity:
                error(f"received_quantity must be a whole number from 0 to {line.expected_quantity}")
                continue
        grade = None
        if grade_raw:
            grade = mapping.grade_for(connection, grade_raw)
            if grade is None:
                error(f"unknown grade {grade_raw!r}")
                continue
        if qty is None and grade is None:
            error("nothing to apply: give received_quantity and/or grade")
            continue
        if (pr.pk, line.line_id) in seen:
            error(f"{sku} of {ref} appears twice in this file")
            continue
        seen.add((pr.pk, line.line_id))
        updates.setdefault(pr.pk, (pr, [], row.get("location", "")))[1].append(
            LineUpdate(line=line, received_quantity=qty, grade=grade, raw_grade=grade_raw))
        result.rows.append(RowResult(n, True, "applied", ref, sku))
    try:
        with transaction.atomic():
            InboundEvent.objects.create(
                connection=connection, source=System.ZIGZAG, event_type="csv_upload",
                dedupe_key=f"{connection.pk}:csv:{digest}", headers={"filename": filename[:200]},
                body=content, status=InboundStatus.PROCESSED, processed_at=timezone.now(),
                error="; ".join(f"line {r.line}: {r.message}" for r in result.rows if not r.ok)[:5000],
            )
    except IntegrityError:
        result.duplicate_file = True
    with transaction.atomic():
        for pr, line_updates, location in updates.values():
            portal_lines_record(portal_return=pr, updates=line_updates, source="csv", location=location)
            result.applied_returns += 1
    return result
