"""TikTok Shop inbound sync: apply pages of returns/orders, poll, backfill.

``returns_apply_page`` is the one way TikTok data lands in our tables, whether it came
from a poll page, a backfill or a webhook re-fetch. It is set-based (a fixed number of
queries per page, whatever its size) and idempotent:

- a payload whose ``update_time`` is older than or equal to what is stored is skipped
  and counted as ``stale`` (equal means "nothing new"), so duplicated and out-of-order
  deliveries converge on the state of the newest version seen;
- rows are matched on their natural keys (connection + return id, order + line id), so
  applying the same page twice changes nothing;
- every created return and every change of status / next action appends one
  ``ReturnEvent`` with a deterministic ``dedupe_key``
  (``tiktok:{return_id}:{update_time}:{status}``), bulk-inserted with
  ``ignore_conflicts=True``. That is the bulk form of
  ``returnsync.timeline.timeline_record`` (which writes single events): same fields,
  same dedupe rule, one INSERT for the page.

Lines are upserted, never deleted: TikTok does not remove return or order lines, and a
``PortalReturnLine`` may point at an ``OrderLine``.

Polling (``poll_window``, run by the shared poll task ``connectors.polling``) reads
Search Returns sorted by ``update_time`` ASC in the window ``[watermark - overlap, now)``.
Each page is applied in its own transaction together with the watermark advance, so a
crash loses at most the page in flight and the next run re-reads it.
"""
from __future__ import annotations

import functools
import json
import logging
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime

from django.db import connections, router, transaction
from django.utils import timezone

from connectors.tiktok_shop.mapping import (
    REFUNDED_STATUSES,
    order_to_canonical,
    refund_external_id,
    return_to_canonical,
)
from returnsync.choices import RefundStatus, System, TimelineKind
from returnsync.models import (
    Connection,
    MarketplaceReturn,
    MarketplaceReturnLine,
    Order,
    OrderLine,
    OrderLineComponent,
    Refund,
    ReturnEvent,
)
from returnsync.services import changes_notify

logger = logging.getLogger(__name__)

RETURNS_STREAM = "tiktok_returns"

RETURN_FIELDS = (
    "order_ref", "return_type", "raw_status", "stage", "role", "reason", "tracking_number",
    "carrier", "refund_total", "refund_subtotal", "refund_shipping", "refund_tax", "currency",
    "seller_proposed_return_type", "partial_refund_offered", "buyer_rejected_partial_refund",
    "is_combined_return", "combined_return_id", "next_action", "next_action_deadline",
    "source_created_at", "source_updated_at", "raw",
)
RETURN_LINE_FIELDS = ("order_line_id", "sku_id", "seller_sku", "product_name", "refund_amount", "currency")
ORDER_FIELDS = ("raw_status", "buyer_postal_code", "currency", "placed_at", "source_updated_at", "raw")
ORDER_LINE_FIELDS = ("sku_id", "seller_sku", "product_id", "product_name", "sale_price", "currency")


@dataclass
class ApplyCounts:
    fetched: int = 0
    created: int = 0
    updated: int = 0
    stale: int = 0
    invalid: int = 0
    orders_created: int = 0
    orders_updated: int = 0
    orders_stale: int = 0
    events: int = 0

    def add(self, other: ApplyCounts) -> None:
        for name in self.__dataclass_fields__:
            setattr(self, name, getattr(self, name) + getattr(other, name))

    def as_dict(self) -> dict[str, int]:
        return {name: getattr(self, name) for name in self.__dataclass_fields__}


def _newer(incoming: datetime | None, stored: datetime | None) -> bool:
    """Is the incoming version strictly newer than the stored one?"""
    if stored is None:
        return True
    if incoming is None:
        return False
    return incoming > stored


def _latest_by(items: Iterable[dict], key: str) -> dict[str, dict]:
    """Collapse duplicates inside one page, keeping the newest ``source_updated_at``."""
    latest: dict[str, dict] = {}
    for item in items:
        ident = item[key]
        current = latest.get(ident)
        if current is None or _newer(item["source_updated_at"], current["source_updated_at"]):
            latest[ident] = item
    return latest


def _iso(moment: datetime | None) -> str | None:
    return moment.isoformat() if moment else None


def _ts(value: datetime | None) -> int:
    return int(value.timestamp()) if value else 0


# --- fast row writing ---------------------------------------------------------------------
#
# The ORM's bulk_create/bulk_update compile every value of every object through the
# expression machinery (~70 % of the time of a page), and bulk_update's CASE WHEN per
# column is slower still. Rows here are plain tuples written as ONE multi-row
# ``INSERT ... VALUES (...), (...) ON CONFLICT ... DO UPDATE`` per table and page (one
# round trip on PostgreSQL, where psycopg's executemany would be one per row), values
# adapted once per column with the backend's own adapters, so the stored representation
# is exactly what the ORM would have written. The upsert syntax is the same on
# SQLite >= 3.24 and PostgreSQL.

_SQL_CACHE: dict[tuple, tuple[str, str, list]] = {}
MAX_PARAMS = 30_000  # below SQLite's 32,766 variables and PostgreSQL's 65,535


@functools.lru_cache(maxsize=8192)
def _sqlite_datetime(value: datetime | None) -> str | None:
    """Django's SQLite datetime adapter (naive UTC text), without its per-call settings
    lookups: a page adapts thousands of datetimes, most of them the same few (the page's
    ``now``, shared create/update times), so the text is remembered."""
    if value is None:
        return None
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return str(value)


def _adapters(model, names: Iterable[str], db) -> list:
    adapters = []
    fast_dt = db.vendor == "sqlite" and str(db.timezone) == "UTC"
    for name in names:
        f = model._meta.get_field(name)
        kind = f.get_internal_type()
        if kind == "DateTimeField":
            adapters.append(_sqlite_datetime if fast_dt else db.ops.adapt_datetimefield_value)
        elif kind == "JSONField":  # what JSONField.get_db_prep_save does, without its per-value dispatch
            adapters.append(lambda value, f=f: None if value is None else json.dumps(value, cls=f.encoder))
        else:
            adapters.append(None)
    return adapters


def _write(model, names: tuple[str, ...], rows: list[tuple], *, conflict: tuple[str, ...] = (),
           update: tuple[str, ...] = (), where: str = "", returning: tuple[str, ...] = (),
           changed_only: bool = False, defer: list | None = None) -> list[tuple]:
    """INSERT ``rows``; on a ``conflict`` key either update the ``update`` columns (only
    ``where`` the condition holds) or, without ``update``, leave the stored row alone.
    With ``returning``, the listed columns of every row inserted or updated come back
    (SQLite >= 3.35 and PostgreSQL both support RETURNING on an upsert).

    ``changed_only`` (PostgreSQL; not with ``where``/``returning``): leave a stored row
    alone when the ``update`` columns already hold the incoming values. PostgreSQL writes
    a new row version (and, with no free space on the page, a new entry in every index)
    for an UPDATE that changes nothing; re-applied lines are the common case.

    ``defer`` (a list; PostgreSQL, not with ``returning``): do not execute, append the
    statement to the list for ``_flush``. Elsewhere the statement runs at once."""
    if not rows:
        return []
    db = connections[router.db_for_write(model)]
    key = (model, names, conflict, update, where, returning, changed_only, db.alias)
    cached = _SQL_CACHE.get(key)
    postgres = db.vendor == "postgresql"
    if cached is None:
        qn = db.ops.quote_name
        column = {n: qn(model._meta.get_field(n).column) for n in (*names, *conflict, *update)}
        head = f"INSERT INTO {qn(model._meta.db_table)} ({', '.join(column[n] for n in names)}) "
        if postgres:
            # One array parameter per column: psycopg parses a short query once, instead of
            # a query with thousands of placeholders on every page.
            fields = [model._meta.get_field(n) for n in names]
            types = ["text" if f.get_internal_type() == "JSONField" else f.db_type(db) for f in fields]
            select = ", ".join(f"u.c{i}::jsonb" if f.get_internal_type() == "JSONField" else f"u.c{i}"
                               for i, f in enumerate(fields))
            head += (f"SELECT {select} FROM unnest({', '.join(f'%b::{t}[]' for t in types)}) "
                     f"AS u({', '.join(f'c{i}' for i in range(len(fields)))})")
        else:
            head += "VALUES "
        tail = ""
        if conflict and update:
            sets = ", ".join(f"{column[n]} = excluded.{column[n]}" for n in update)
            tail = f" ON CONFLICT ({', '.join(column[n] for n in conflict)}) DO UPDATE SET {sets}"
            if where:
                tail += f" WHERE {where}"
            elif changed_only and postgres:
                table = qn(model._meta.db_table)
                tail += (f" WHERE ({', '.join(f'{table}.{column[n]}' for n in update)}) IS DISTINCT FROM"
                         f" ({', '.join(f'excluded.{column[n]}' for n in update)})")
        elif conflict:
            tail = " ON CONFLICT DO NOTHING"
        if returning:
            tail += " RETURNING " + ", ".join(qn(model._meta.get_field(n).column) for n in returning)
        cached = _SQL_CACHE[key] = (head, tail, _adapters(model, names, db))
    head, tail, adapters = cached
    if postgres:
        columns = [
            [row[i] for row in rows] if a is None else [a(row[i]) for row in rows]
            for i, a in enumerate(adapters)
        ]
        if defer is not None:  # queued for _flush: sent later, in one statement with others
            defer.append((head + tail, columns))
            return []
        import psycopg

        db.ensure_connection()
        # Django's cursors bind client-side (text); arrays go much faster bound server-side
        # in binary. Same connection, so the same transaction.
        with psycopg.Cursor(db.connection) as cursor:
            cursor.execute(head + tail, columns, binary=True)
            return [tuple(row) for row in cursor.fetchall()] if returning else []
    row_sql = "(" + ", ".join(["%s"] * len(names)) + ")"
    per_batch = max(1, MAX_PARAMS // len(names))
    out: list[tuple] = []
    with db.cursor() as cursor:
        for start in range(0, len(rows), per_batch):
            batch = rows[start:start + per_batch]
            params = [v if a is None else a(v) for row in batch for a, v in zip(adapters, row)]
            cursor.execute(head + ", ".join([row_sql] * len(batch)) + tail, params)
            if returning:
                out.extend(cursor.fetchall())
    return out


def _stored(model, key: str, keys: list[str], connection_pk: int, columns: tuple[str, ...]) -> list[tuple]:
    """``columns`` of the stored rows of ``model`` whose ``(connection, key)`` is one of
    ``keys`` (``key`` must be the last column of a unique index on (connection, key)).

    PostgreSQL: one index probe per key on that unique index (``LATERAL ... LIMIT 1``
    cannot be flattened into a join, and a probe on both columns of a unique index is the
    cheapest path whatever the statistics say). A plain ``key IN (...)`` is planned from
    the table statistics: with none (autovacuum off, or a table that grew since its last
    ANALYZE) PostgreSQL estimates a quarter of the table for 50 keys and scans all of it,
    ~5 ms a page at 10k rows and growing with the table.
    SQLite: its planner always probes the index for ``IN``; filtered on the selective
    column, the connection is checked here."""
    if not keys:
        return []
    db = connections[router.db_for_read(model)]
    if db.vendor != "postgresql":
        return [
            row[:-1] for row in model.objects.filter(**{f"{key}__in": keys}).order_by()
            .values_list(*columns, "connection_id") if row[-1] == connection_pk
        ]
    cached = _SQL_CACHE.get((model, key, columns, "stored", db.alias))
    if cached is None:
        qn = db.ops.quote_name
        col = {n: qn(model._meta.get_field(n).column) for n in (*columns, key)}
        cached = _SQL_CACHE[(model, key, columns, "stored", db.alias)] = (
            f"SELECT {', '.join(f's.{col[n]}' for n in columns)} FROM unnest(%b::varchar[]) AS k(v)"
            f" CROSS JOIN LATERAL (SELECT {', '.join(f't.{col[n]}' for n in columns)}"
            f" FROM {qn(model._meta.db_table)} t WHERE t.\"connection_id\" = %b AND t.{col[key]} = k.v"
            f" LIMIT 1) AS s"
        )
    import psycopg

    db.ensure_connection()
    with psycopg.Cursor(db.connection) as cursor:
        cursor.execute(cached, [keys, connection_pk], binary=True)
        return [tuple(row) for row in cursor.fetchall()]


def _flush(model, deferred: list[tuple[str, list]]) -> None:
    """Execute statements queued by ``_write(defer=...)`` as ONE statement (PostgreSQL
    data-modifying CTEs: ``WITH w0 AS (INSERT ...) INSERT ...``). Each statement costs
    a round trip plus its own parse and plan (~0.5 ms on this machine, more than the
    server's work for a page of lines); writes that need nothing back can share one."""
    if not deferred:
        return
    db = connections[router.db_for_write(model)]
    sql = deferred[-1][0]
    if len(deferred) > 1:
        sql = "WITH " + ", ".join(f"w{i} AS ({q})" for i, (q, _) in enumerate(deferred[:-1])) + " " + sql
    import psycopg

    db.ensure_connection()
    with psycopg.Cursor(db.connection) as cursor:
        cursor.execute(sql, [p for _, params in deferred for p in params], binary=True)
    deferred.clear()


# --- orders -----------------------------------------------------------------------------

ORDER_INSERT = ("created_at", "updated_at", "connection", "order_id", *ORDER_FIELDS)
ORDER_LINE_INSERT = ("order", "line_id", *ORDER_LINE_FIELDS)
COMPONENT_INSERT = ("line", "sku_id", "seller_sku", "product_id", "quantity")
RETURN_INSERT = ("created_at", "updated_at", "connection", "return_id", "order", *RETURN_FIELDS)
RETURN_LINE_INSERT = ("marketplace_return", "line_id", *RETURN_LINE_FIELDS)
EVENT_INSERT = ("order_ref", "return_ref", "marketplace_return", "system", "kind", "summary", "data",
                "occurred_at", "recorded_at", "dedupe_key")
# Only a strictly newer version may overwrite a stored row, even when two workers race.
_ORDER_NEWER = ('"returnsync_order"."source_updated_at" IS NULL OR '
                'excluded."source_updated_at" > "returnsync_order"."source_updated_at"')
_RETURN_NEWER = ('"returnsync_marketplacereturn"."source_updated_at" IS NULL OR '
                 'excluded."source_updated_at" > "returnsync_marketplacereturn"."source_updated_at"')


def orders_apply(*, connection: Connection, orders: Iterable[dict], counts: ApplyCounts | None = None,
                 deferred: list | None = None) -> dict[str, int]:
    """Upsert TikTok order payloads (with lines and bundle components).

    Returns ``{order_id: pk}`` for every order of the batch that is now stored.
    Stale versions (``update_time`` not newer) are skipped and counted.
    With ``deferred`` (PostgreSQL), the writes that need nothing back (components, the
    linking of earlier returns) are queued there for the caller's ``_flush``.
    """
    own = deferred is None
    deferred = [] if own else deferred
    ids = _orders_apply(connection, orders, counts, deferred)
    if own:
        _flush(OrderLineComponent, deferred)
    return ids


def _orders_apply(connection: Connection, orders: Iterable[dict], counts: ApplyCounts | None,
                  deferred: list) -> dict[str, int]:
    counts = counts if counts is not None else ApplyCounts()
    mapped = _latest_by(
        (c for c in (order_to_canonical(p) for p in orders) if c["order_id"]), "order_id"
    )
    if not mapped:
        return {}
    existing = {
        order_id: (pk, updated)
        for pk, order_id, updated in _stored(Order, "order_id", list(mapped), connection.pk,
                                             ("id", "order_id", "source_updated_at"))
    }
    now = timezone.now()
    created: list[str] = []
    updated_ids: list[str] = []
    for order_id, data in mapped.items():
        if order_id not in existing:
            created.append(order_id)
            continue
        pk, stored_updated = existing[order_id]
        if _newer(data["source_updated_at"], stored_updated):
            updated_ids.append(order_id)
        else:
            counts.orders_stale += 1
    written = _write(Order, ORDER_INSERT, [
        (now, now, connection.pk, order_id, *(mapped[order_id][n] for n in ORDER_FIELDS))
        for order_id in (*created, *updated_ids)
    ], conflict=("connection", "order_id"), update=("updated_at", *ORDER_FIELDS), where=_ORDER_NEWER,
        returning=("order_id", "id"))
    counts.orders_created += len(created)
    counts.orders_updated += len(updated_ids)
    ids = {order_id: pk for order_id, (pk, _) in existing.items()}
    ids.update(written)
    if len(written) < len(created) + len(updated_ids):  # a concurrent writer won some rows
        ids.update(Order.objects.filter(connection=connection, order_id__in=created).values_list("order_id", "id"))

    changed = [order_id for order_id, _ in written]  # lines follow only the versions we wrote
    line_rows, with_components = [], []
    for order_id in changed:
        pk = ids[order_id]
        for line in mapped[order_id]["lines"]:
            line_rows.append((pk, line["line_id"], *(line[n] for n in ORDER_LINE_FIELDS)))
            if line["components"]:
                with_components.append((pk, line))
    line_pks = {
        (order_pk, line_id): pk for order_pk, line_id, pk in _write(
            OrderLine, ORDER_LINE_INSERT, line_rows, conflict=("order", "line_id"), update=ORDER_LINE_FIELDS,
            returning=("order", "line_id", "id") if with_components else ())
    }
    if with_components:
        _write(OrderLineComponent, COMPONENT_INSERT, [
            (line_pks[(order_pk, line["line_id"])], c["sku_id"], c["seller_sku"], c["product_id"], c["quantity"])
            for order_pk, line in with_components for c in line["components"]
        ], conflict=("line", "sku_id", "seller_sku"), update=("product_id", "quantity"), changed_only=True,
            defer=deferred)
    if created:
        # Returns stored before their order arrived: link them now (one UPDATE).
        db = connections[router.db_for_write(MarketplaceReturn)]
        link = ('UPDATE "returnsync_marketplacereturn" SET "order_id" = (SELECT o."id" FROM "returnsync_order" o'
                ' WHERE o."connection_id" = %s AND o."order_id" = "returnsync_marketplacereturn"."order_ref")'
                ' WHERE "connection_id" = %s AND "order_id" IS NULL AND "order_ref" ')
        if db.vendor == "postgresql":  # one array parameter; sent with the other deferred writes
            deferred.append((link + "= ANY(%b::varchar[])", [connection.pk, connection.pk, created]))
        else:
            with db.cursor() as cursor:
                cursor.execute(link + "IN (" + ", ".join(["%s"] * len(created)) + ")",
                               [connection.pk, connection.pk, *created])
    return ids


# --- returns ----------------------------------------------------------------------------


def _status_label(data: dict) -> str:
    label = data["raw_status"] or "unknown status"
    if data["next_action"]:
        label += f", next: {data['next_action']}"
    return label


def returns_apply_page(
    *, connection: Connection, returns: list[dict], orders: Iterable[dict] = ()
) -> ApplyCounts:
    """Apply one page of TikTok return payloads (and the orders they reference).

    Set-based and idempotent; see the module docstring. Runs in one transaction (a
    savepoint when the caller already holds one). Queries per page: a constant
    (load orders, write orders/lines/components, load returns, write returns/lines,
    write events), whatever the page size.
    """
    counts = ApplyCounts(fetched=len(returns))
    deferred: list = []  # PostgreSQL: writes that need nothing back, sent as one statement (_flush)
    with transaction.atomic():
        order_ids = orders_apply(connection=connection, orders=orders, counts=counts, deferred=deferred)

        canonical = []
        for payload in returns:
            data = return_to_canonical(payload)
            if data["return_id"]:
                canonical.append(data)
            else:
                counts.invalid += 1
        mapped = _latest_by(canonical, "return_id")
        counts.stale += len(canonical) - len(mapped)  # older duplicates inside the page
        if not mapped:
            _flush(ReturnEvent, deferred)
            return counts

        existing = {
            row[1]: row for row in _stored(
                MarketplaceReturn, "return_id", list(mapped), connection.pk,
                ("id", "return_id", "source_updated_at", "raw_status", "next_action", "order"))
        }
        missing_refs = {
            d["order_ref"] for d in mapped.values() if d["order_ref"] and d["order_ref"] not in order_ids
            and (d["return_id"] not in existing or existing[d["return_id"]][5] is None)
        }
        if missing_refs:
            order_ids.update(_stored(Order, "order_id", list(missing_refs), connection.pk, ("order_id", "id")))

        now = timezone.now()
        created: list[str] = []
        updated: dict[str, int | None] = {}  # return id → its stored order pk
        pks: dict[str, int] = {}
        events: list[tuple] = []
        for return_id, data in mapped.items():
            occurred = data["source_updated_at"] or data["source_created_at"] or now
            key = f"tiktok:{return_id}:{_ts(data['source_updated_at'])}:{data['raw_status']}"
            if return_id not in existing:
                created.append(return_id)
                events.append((return_id, TimelineKind.CREATED,
                               f"Return requested on TikTok ({_status_label(data)})",
                               {"status": data["raw_status"], "stage": data["stage"],
                                "next_action": data["next_action"], "deadline": _iso(data["next_action_deadline"])},
                               data["source_created_at"] or occurred, key))
                continue
            _, _, stored_updated, stored_status, stored_action, stored_order = existing[return_id]
            if not _newer(data["source_updated_at"], stored_updated):
                counts.stale += 1
                continue
            updated[return_id] = stored_order
            if stored_status != data["raw_status"] or stored_action != data["next_action"]:
                events.append((return_id, TimelineKind.STATUS_CHANGED,
                               f"TikTok: {stored_status or '—'} → {_status_label(data)}",
                               {"from": stored_status, "status": data["raw_status"], "stage": data["stage"],
                                "next_action": data["next_action"],
                                "deadline": _iso(data["next_action_deadline"])},
                               occurred, key))
        pks.update(_write(MarketplaceReturn, RETURN_INSERT, [
            (now, now, connection.pk, rid, updated.get(rid) or order_ids.get(mapped[rid]["order_ref"]),
             *(mapped[rid][n] for n in RETURN_FIELDS)) for rid in (*created, *updated)
        ], conflict=("connection", "return_id"), update=("updated_at", "order", *RETURN_FIELDS),
            where=_RETURN_NEWER, returning=("return_id", "id")))
        counts.created = sum(1 for rid in created if rid in pks)
        counts.updated = sum(1 for rid in updated if rid in pks)
        counts.stale += len(created) + len(updated) - len(pks)  # a concurrent writer was newer
        events = [e for e in events if e[0] in pks]

        _write(MarketplaceReturnLine, RETURN_LINE_INSERT, [
            (pks[rid], line["line_id"], *(line[n] for n in RETURN_LINE_FIELDS))
            for rid in pks for line in mapped[rid]["lines"]
        ], conflict=("marketplace_return", "line_id"), update=RETURN_LINE_FIELDS, changed_only=True,
            defer=deferred)
        # The bulk form of returnsync.timeline.timeline_record: same fields and dedupe rule.
        _write(ReturnEvent, EVENT_INSERT, [
            (mapped[rid]["order_ref"], rid, pks[rid], System.TIKTOK_SHOP, str(kind), summary[:300], data,
             occurred, now, key)
            for rid, kind, summary, data, occurred, key in events
        ], conflict=("dedupe_key",), defer=deferred)
        _flush(ReturnEvent, deferred)
        counts.events = len(events)
        _refunds_record(connection, {rid: mapped[rid] for rid in pks}, pks)
        changes_notify(order_refs={mapped[rid]["order_ref"] for rid in pks})
    return counts


def _refunds_record(connection: Connection, returns: dict[str, dict], pks: dict[str, int]) -> None:
    """A refund TikTok paid, as a ``Refund`` row (finance's reconciliation and the refund
    rules read them). Recorded once per return: the first sighting's time and amount stand."""
    refunds = [
        Refund(connection=connection, external_id=refund_external_id(rid), order_ref=data["order_ref"],
               marketplace_return_id=pks[rid], amount=data["refunded_amount"], currency=data["currency"],
               raw_status=data["raw_status"], status=RefundStatus.SUCCEEDED,
               refunded_at=data["source_updated_at"] or timezone.now())
        for rid, data in returns.items()
        if data["raw_status"] in REFUNDED_STATUSES and data["refunded_amount"]
    ]
    if refunds:
        Refund.objects.bulk_create(refunds, ignore_conflicts=True)


# --- polling ----------------------------------------------------------------------------


def _client(connection: Connection):
    from connectors.tiktok_shop.client import TikTokClient  # the client helper's module

    return TikTokClient(connection)


def _missing_order_ids(connection: Connection, returns: list[dict]) -> list[str]:
    refs = {r["order_ref"] for r in (return_to_canonical(p) for p in returns) if r["order_ref"]}
    if not refs:
        return []
    known = {row[0] for row in _stored(Order, "order_id", list(refs), connection.pk, ("order_id",))}
    return sorted(refs - known)


def poll_window(*, connection: Connection, window, client) -> dict:
    """The connector's poll (``PollSpec.run``): every return updated in ``[window.since,
    window.until)``, page by page; each page is committed together with the watermark
    advance (``window.advance``) before the next is asked for."""
    totals = ApplyCounts()
    orders_fetched = pages = 0
    token = None
    filters = {"update_time_ge": int(window.since.timestamp()), "update_time_lt": int(window.until.timestamp())}
    while True:
        data = client.search_returns(filters=filters, page_token=token,
                                     sort_field="update_time", sort_order="ASC") or {}
        page = [r for r in (data.get("return_orders") or []) if isinstance(r, dict)]
        missing = _missing_order_ids(connection, page)
        orders = client.get_orders(missing) if missing else []
        orders_fetched += len(orders)
        with transaction.atomic():
            counts = returns_apply_page(connection=connection, returns=page, orders=orders)
            seen = [c["source_updated_at"] for c in map(return_to_canonical, page) if c["source_updated_at"]]
            if seen:
                window.advance(max(seen))
        totals.add(counts)
        pages += 1
        token = data.get("next_page_token") or None
        if not token or not page:
            break
    result = totals.as_dict()
    result.update(pages=pages, orders_fetched=orders_fetched)
    return result


def return_refetch(*, connection: Connection, return_id: str, client=None) -> ApplyCounts:
    """Fetch one return (and its order if we lack it) and apply it: the webhook path."""
    client = client or _client(connection)
    data = client.search_returns(filters={"return_ids": [return_id]}) or {}
    page = [r for r in (data.get("return_orders") or []) if isinstance(r, dict)]
    missing = _missing_order_ids(connection, page)
    orders = client.get_orders(missing) if missing else []
    return returns_apply_page(connection=connection, returns=page, orders=orders)


def order_refetch(*, connection: Connection, order_id: str, client=None) -> ApplyCounts:
    """Fetch one order and apply it (ORDER_STATUS_CHANGE webhooks)."""
    client = client or _client(connection)
    counts = ApplyCounts()
    orders = client.get_orders([order_id])  # never hold a transaction open across HTTP
    with transaction.atomic():
        orders_apply(connection=connection, orders=orders, counts=counts)
    return counts


__all__ = [
    "RETURNS_STREAM",
    "ApplyCounts",
    "order_refetch",
    "orders_apply",
    "poll_window",
    "return_refetch",
    "returns_apply_page",
]
