"""ZigZag: mirror TikTok returns into ZigZag, apply what ZigZag reports, act on it.

``mirror_for_orders(order_refs=...)``
    Change listener (``settings.RETURN_CHANGE_LISTENERS``): the TikTok returns of these
    orders that need a parcel back and have no ZigZag record get a mirror write-back
    queued at once. ``mirror_sweep()`` is the periodic backstop over every order.

``mirror_queue`` / ``mirror_run``
    One ``WriteBack(action=create_portal_return)`` per (ZigZag connection, TikTok return),
    key ``zigzag:{conn}:{return_id}:create``. The run claims it with a conditional update
    and creates the ZigZag return with the TikTok return id as its unique ``reference``,
    so a retry after a lost answer finds the same return (409 + the existing one). A
    return that cannot be mirrored is ``dead`` with the reason in ``last_error`` (and a
    timeline note): visible, and retryable through ``connectors.retry``.

``portal_return_apply(connection=..., snapshot=...)``
    A ZigZag return as ZigZag describes it now (webhook, poll, create answer) → our
    ``PortalReturn`` and lines. Older snapshots than the stored one are ignored, so
    duplicated and reordered deliveries converge. ``portal_lines_record`` is the part
    that sets received quantities and grades; the CSV fallback calls it too.

After any change (``portal_return_follow_up``): a receipt queues TikTok's
``APPROVE_RECEIVED_PACKAGE``; an item graded sellable queues one stock adjustment per
SKU (bundle → components) keyed ``restock:{line}:{sku}``; the partial-refund flag is
recomputed (``returnsync.services.portal_return_partial_refund_refresh``, which also
notifies the change listeners).
"""
from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime

from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from connectors.jobs import RUNNING_LEASE, job_claim, job_enqueue, job_fail, write_back_create_once
from connectors.zigzag import mapping
from returnsync.choices import Grade, JobStatus, Stage, System, TimelineKind, WriteBackAction
from returnsync.models import (
    BundleMapping,
    Connection,
    MarketplaceReturn,
    MarketplaceReturnLine,
    Order,
    OrderLine,
    OrderLineComponent,
    PortalReturn,
    PortalReturnLine,
    WarehouseMapping,
    WriteBack,
)
from returnsync.money import CENT, RECEIVED_STAGES, bundle_component_totals
from returnsync.timeline import timeline_record

logger = logging.getLogger(__name__)

MIRROR_TASK = "connectors.zigzag.tasks.mirror_run_task"
RECEIVED_DECISION = "APPROVE_RECEIVED_PACKAGE"


class MirrorError(Exception):
    """The TikTok return cannot be mirrored as it stands (a person must look)."""

    retryable = False


class MirrorNotReady(Exception):
    """Not yet (the order has not been fetched): try again later."""

    retryable = True


# --- which connection mirrors which ------------------------------------------------------


def tiktok_connection_for(connection: Connection) -> Connection | None:
    """The TikTok connection a ZigZag connection mirrors: ``options["tiktok_connection_id"]``,
    else the single enabled TikTok connection."""
    wanted = (connection.options or {}).get("tiktok_connection_id")
    qs = Connection.objects.filter(kind=System.TIKTOK_SHOP)
    if wanted:
        return qs.filter(pk=wanted).first()
    enabled = list(qs.filter(is_enabled=True)[:2])
    return enabled[0] if len(enabled) == 1 else None


def zigzag_connections_for(tiktok_connection_id: int) -> list[Connection]:
    return [c for c in Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True)
            if (t := tiktok_connection_for(c)) is not None and t.pk == tiktok_connection_id]


def _needs_parcel(connection: Connection) -> Q:
    cfg = mapping.config(connection)
    return Q(return_type__in=cfg["mirror_return_types"], stage__in=cfg["mirror_stages"])


def mirror_key(*, connection: Connection, return_id: str) -> str:
    return f"zigzag:{connection.pk}:{return_id}:create"


# --- mirror ------------------------------------------------------------------------------


def mirror_for_orders(*, order_refs) -> int:
    """Queue the mirror of every TikTok return of these orders that needs a ZigZag return."""
    refs = {r for r in order_refs if r}
    if not refs:
        return 0
    queued = 0
    for zz in Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True):
        tiktok = tiktok_connection_for(zz)
        if tiktok is None:
            continue
        portal_returns_link(connection=zz, tiktok=tiktok, order_refs=refs)
        candidates = MarketplaceReturn.objects.filter(_needs_parcel(zz), connection=tiktok, order_ref__in=refs)
        queued += _mirror_missing(zz, candidates)
    return queued


def portal_returns_link(*, connection: Connection, tiktok: Connection, order_refs) -> int:
    """Link ZigZag returns that reached us before their TikTok return did (their reference is
    a TikTok return id we had not synced yet), then act on what they already say (a receipt
    queues the TikTok decision, grading the restock). Called as TikTok returns arrive."""
    returns = MarketplaceReturn.objects.filter(connection=tiktok, order_ref__in=sorted(order_refs))
    by_return_id = {m.return_id: m for m in returns.only("id", "return_id", "order_ref", "order_id")}
    if not by_return_id:
        return 0
    linked = 0
    for pr in PortalReturn.objects.filter(connection=connection, marketplace_return__isnull=True,
                                          return_ref__in=sorted(by_return_id)):
        mreturn = by_return_id[pr.return_ref]
        if PortalReturn.objects.filter(pk=pr.pk, marketplace_return__isnull=True).update(
                marketplace_return=mreturn, order_id=mreturn.order_id, order_ref=pr.order_ref or mreturn.order_ref,
                updated_at=timezone.now()) != 1:
            continue  # linked meanwhile
        pr.refresh_from_db()
        timeline_record(system=System.ZIGZAG, kind=TimelineKind.LINKED, marketplace_return=mreturn,
                        summary=f"Linked to ZigZag return {pr.external_id}", data={"portal_return": pr.pk},
                        dedupe_key=f"zz:{pr.pk}:linked")
        portal_return_follow_up(portal_return=pr)
        linked += 1
    return linked


def mirror_sweep() -> int:
    """Backstop: queue the mirror of anything a listener missed (run periodically)."""
    queued = 0
    for zz in Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True):
        tiktok = tiktok_connection_for(zz)
        if tiktok is not None:
            queued += _mirror_missing(zz, MarketplaceReturn.objects.filter(_needs_parcel(zz), connection=tiktok))
    return queued


def _mirror_missing(zz: Connection, candidates) -> int:
    mirrored = PortalReturn.objects.filter(connection=zz).exclude(return_ref="").values("return_ref")
    queued_keys = WriteBack.objects.filter(connection=zz, action=WriteBackAction.CREATE_PORTAL_RETURN)
    count = 0
    for mreturn in candidates.exclude(return_id__in=mirrored).exclude(
            write_backs__in=queued_keys).order_by("id")[:500]:
        mirror_queue(connection=zz, marketplace_return=mreturn)
        count += 1
    return count


def mirror_queue(*, connection: Connection, marketplace_return: MarketplaceReturn) -> WriteBack:
    """Queue the ZigZag return for a TikTok return (idempotent: one row, one ZigZag return)."""
    key = mirror_key(connection=connection, return_id=marketplace_return.return_id)
    with transaction.atomic():
        write_back, created = write_back_create_once(
            idempotency_key=key, connection=connection, action=WriteBackAction.CREATE_PORTAL_RETURN,
            marketplace_return=marketplace_return,
            payload={"return_id": marketplace_return.return_id, "order_id": marketplace_return.order_ref},
        )
        if not created:
            return write_back
        timeline_record(
            system=System.ZIGZAG, kind=TimelineKind.WRITE_BACK, marketplace_return=marketplace_return,
            summary="Queued: create the ZigZag return", data={"write_back": write_back.pk},
            dedupe_key=f"writeback:{write_back.pk}:queued",
        )
        job_enqueue(MIRROR_TASK, write_back.pk, f"zigzag-mirror-{write_back.pk}")
    return write_back


def _order_for(mreturn: MarketplaceReturn) -> Order | None:
    if mreturn.order_id:
        return mreturn.order
    return Order.objects.filter(connection_id=mreturn.connection_id, order_id=mreturn.order_ref).first()


def mirror_payload(*, marketplace_return: MarketplaceReturn) -> dict:
    """The create-return body: one item per returned SKU; a bundle sold as one SKU becomes
    one item per component (priced by the mapping's shares, summing to the bundle)."""
    order = _order_for(marketplace_return)
    if order is None:
        raise MirrorNotReady(f"order {marketplace_return.order_ref} not synced yet")
    order_lines = {ol.line_id: ol for ol in order.lines.all()}
    lines = list(marketplace_return.lines.all())
    if not lines:
        raise MirrorError("the TikTok return lists no items")
    skus = {(order_lines[ln.order_line_id].seller_sku if ln.order_line_id in order_lines else ln.seller_sku)
            for ln in lines}
    bundles = {b.bundle_sku: b for b in BundleMapping.objects.filter(bundle_sku__in=skus, is_active=True)
               .prefetch_related("components")}
    items: dict[tuple, dict] = {}
    for line in lines:
        order_line = order_lines.get(line.order_line_id)
        sku = order_line.seller_sku if order_line else line.seller_sku
        if not sku:
            raise MirrorError(f"return line {line.line_id} has no seller SKU")
        name = (order_line.product_name if order_line else line.product_name)[:300]
        if sku in bundles and order_line is not None:
            components = list(bundles[sku].components.all())
            totals = bundle_component_totals(bundle_price=order_line.sale_price, components=components)
            for comp in components:
                items[(line.line_id, comp.component_sku)] = {
                    "item_reference": f"{line.line_id}:{comp.component_sku}", "sku": comp.component_sku,
                    "name": f"{name} / {comp.component_sku}"[:300], "quantity": comp.quantity,
                    "unit_price": str((totals[comp.component_sku] / comp.quantity).quantize(CENT)),
                }
            continue
        price = order_line.sale_price if order_line else line.refund_amount
        group = items.get((sku, str(price)))
        if group is not None:  # TikTok lists one line per unit: one item, quantity n
            group["quantity"] += 1
            continue
        items[(sku, str(price))] = {"item_reference": line.line_id, "sku": sku, "name": name, "quantity": 1,
                                    "unit_price": None if price is None else str(price)}
    return mapping.create_payload(
        reference=marketplace_return.return_id, order_reference=marketplace_return.order_ref,
        currency=marketplace_return.currency or order.currency, items=list(items.values()),
        customer={"postal_code": order.buyer_postal_code},
    )


def _client(connection: Connection):
    from connectors.zigzag.client import ZigZagClient

    return ZigZagClient(connection)


def mirror_run(*, write_back_id: int, client=None) -> WriteBack:
    """Create the ZigZag return for one queued mirror, once however often it is called."""
    now = timezone.now()
    if not job_claim(WriteBack, write_back_id, now):
        return WriteBack.objects.get(pk=write_back_id)
    write_back = WriteBack.objects.select_related("connection", "marketplace_return").get(pk=write_back_id)
    mreturn = write_back.marketplace_return
    try:
        if mreturn is None:
            raise MirrorError("the TikTok return no longer exists")
        payload = mirror_payload(marketplace_return=mreturn)
        data = (client or _client(write_back.connection)).create_return(payload)
        portal_return, _ = portal_return_apply(
            connection=write_back.connection, snapshot=mapping.return_from_payload(write_back.connection, data),
            source="create")
    except Exception as exc:  # noqa: BLE001 — every failure is recorded on the write-back
        job_fail(write_back, exc, timezone.now())
        summary = f"ZigZag return not created: {write_back.last_error[:200]}"
        if write_back.status == JobStatus.RETRYING:
            summary += f" — retry {write_back.attempts + 1}/{write_back.max_attempts} at {write_back.next_attempt_at:%H:%M:%S}"
        else:
            summary += " — unmirrored, needs a person"
    else:
        write_back.status = JobStatus.SUCCEEDED
        write_back.succeeded_at = timezone.now()
        write_back.last_error = ""
        write_back.last_http_status = None
        write_back.last_api_code = ""
        write_back.portal_return = portal_return
        summary = f"ZigZag return {portal_return.external_id} created"
    write_back.save(update_fields=["status", "succeeded_at", "next_attempt_at", "last_error", "last_http_status",
                                   "last_api_code", "portal_return", "updated_at"])
    if mreturn is not None:
        timeline_record(
            system=System.ZIGZAG, kind=TimelineKind.WRITE_BACK, marketplace_return=mreturn, summary=summary,
            data={"write_back": write_back.pk, "status": write_back.status, "error": write_back.last_error[:300]},
            dedupe_key=f"writeback:{write_back.pk}:{write_back.attempts}:{write_back.status}",
        )
    return write_back


def writeback_enqueue(*, write_back: WriteBack) -> None:
    """Queue one run of a ZigZag write-back (the mirror), after commit."""
    job_enqueue(MIRROR_TASK, write_back.pk, f"zigzag-mirror-{write_back.pk}")


def writebacks_enqueue_due(*, now=None) -> int:
    now = now or timezone.now()
    due = (Q(status__in=[JobStatus.QUEUED, JobStatus.RETRYING])
           & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))) | Q(
        status=JobStatus.RUNNING, updated_at__lt=now - RUNNING_LEASE)
    ids = list(WriteBack.objects.filter(due, connection__kind=System.ZIGZAG).values_list("id", flat=True)[:500])
    for pk in ids:
        job_enqueue(MIRROR_TASK, pk, f"zigzag-mirror-{pk}")
    return len(ids)


# --- applying what ZigZag says -------------------------------------------------------------


@dataclass
class LineUpdate:
    line: PortalReturnLine
    received_quantity: int | None = None
    grade: Grade | None = None
    raw_grade: str = ""


def _order_line_for(mreturn: MarketplaceReturn | None, order: Order | None, item_reference: str):
    if not item_reference or order is None:
        return None
    line_id = item_reference.split(":", 1)[0]
    order_line_id = ""
    if mreturn is not None:
        order_line_id = MarketplaceReturnLine.objects.filter(
            marketplace_return=mreturn, line_id=line_id).values_list("order_line_id", flat=True).first() or ""
    return OrderLine.objects.filter(order=order, line_id=order_line_id or line_id).first()


@transaction.atomic
def portal_return_apply(*, connection: Connection, snapshot: mapping.ReturnSnapshot, source: str,
                        event_name: str = "", occurred_at: datetime | None = None) -> tuple[PortalReturn, str]:
    """Store a ZigZag return as ZigZag describes it; ``(portal_return, "created"|"updated"|"stale")``.

    A snapshot older than the stored one changes nothing (reordered deliveries); the same
    snapshot again changes nothing either (every write below is an absolute value and
    every timeline row and follow-up is deduplicated)."""
    pr = (PortalReturn.objects.select_for_update().filter(connection=connection, external_id=snapshot.external_id)
          .first())
    if pr is None and snapshot.reference:
        pr = PortalReturn.objects.select_for_update().filter(connection=connection,
                                                             return_ref=snapshot.reference).first()
    created = pr is None
    if not created and pr.source_updated_at and snapshot.updated_at and snapshot.updated_at < pr.source_updated_at:
        return pr, "stale"
    tiktok = tiktok_connection_for(connection)
    mreturn = order = None
    if snapshot.reference and tiktok is not None:
        mreturn = MarketplaceReturn.objects.filter(connection=tiktok, return_id=snapshot.reference).first()
    order_ref = snapshot.order_reference or (mreturn.order_ref if mreturn else "")
    if order_ref and tiktok is not None:
        order = Order.objects.filter(connection=tiktok, order_id=order_ref).first()
    if created:
        pr = PortalReturn(connection=connection, external_id=snapshot.external_id)
    before = (pr.raw_status, pr.tracking_number)
    pr.return_ref = snapshot.reference or pr.return_ref
    pr.order_ref = order_ref or pr.order_ref
    pr.marketplace_return = mreturn or pr.marketplace_return
    pr.order = order or pr.order
    pr.raw_status = snapshot.raw_status or pr.raw_status
    if snapshot.raw_status:
        pr.stage = snapshot.stage
    pr.tracking_number = snapshot.tracking_number or pr.tracking_number
    pr.carrier = snapshot.carrier or pr.carrier
    pr.warehouse_code = snapshot.location or pr.warehouse_code
    pr.currency = snapshot.currency or pr.currency or (mreturn.currency if mreturn else "")
    pr.source_created_at = snapshot.created_at or pr.source_created_at
    if snapshot.authorized_refund is not None and snapshot.authorized_refund >= 0:
        pr.authorized_refund = snapshot.authorized_refund
    pr.source_updated_at = snapshot.updated_at or pr.source_updated_at
    pr.raw = snapshot.raw
    if snapshot.raw_status and pr.stage in RECEIVED_STAGES and pr.received_at is None:
        pr.received_at = occurred_at or snapshot.updated_at or timezone.now()
    if snapshot.raw_status and pr.stage == Stage.INSPECTED and pr.inspected_at is None:
        pr.inspected_at = occurred_at or snapshot.updated_at or timezone.now()
    pr.save()
    when = occurred_at or snapshot.updated_at
    if created:
        timeline_record(system=System.ZIGZAG, kind=TimelineKind.CREATED, portal_return=pr, occurred_at=when,
                        summary=f"ZigZag return {pr.external_id} opened ({pr.raw_status or 'no status'})",
                        dedupe_key=f"zz:{pr.pk}:created")
        if mreturn is not None:
            timeline_record(system=System.ZIGZAG, kind=TimelineKind.LINKED, marketplace_return=mreturn,
                            summary=f"Mirrored to ZigZag as {pr.external_id}", data={"portal_return": pr.pk},
                            dedupe_key=f"zz:{pr.pk}:linked")
    if not created and before[0] != pr.raw_status:
        timeline_record(system=System.ZIGZAG, kind=TimelineKind.STATUS_CHANGED, portal_return=pr, occurred_at=when,
                        summary=f"ZigZag: {before[0] or '—'} → {pr.raw_status}",
                        data={"event": event_name, "source": source},
                        dedupe_key=f"zz:{pr.pk}:status:{pr.raw_status}")
    if pr.tracking_number and before[1] != pr.tracking_number:
        timeline_record(system=System.ZIGZAG,
                        kind=TimelineKind.LABEL_CREATED if not before[1] else TimelineKind.TRACKING_UPDATED,
                        portal_return=pr, occurred_at=when,
                        summary=f"Label {pr.carrier or ''} {pr.tracking_number}".replace("  ", " "),
                        dedupe_key=f"zz:{pr.pk}:tracking:{pr.tracking_number}")
    lines = {ln.line_id: ln for ln in pr.lines.all()}
    updates = []
    for item in snapshot.items:
        line = lines.get(item.item_id)
        if line is None:
            line = PortalReturnLine.objects.create(
                portal_return=pr, line_id=item.item_id, sku=item.sku, product_name=item.name,
                expected_quantity=item.quantity, unit_price=item.unit_price, currency=pr.currency,
                order_line=_order_line_for(mreturn, order, item.item_reference),
            )
        updates.append(LineUpdate(line=line, received_quantity=item.received_quantity,
                                  grade=item.grade if item.raw_grade else None, raw_grade=item.raw_grade))
    portal_lines_record(portal_return=pr, updates=updates, source=source, occurred_at=when)
    return pr, "created" if created else "updated"


def portal_lines_record(*, portal_return: PortalReturn, updates: list[LineUpdate], source: str,
                        occurred_at: datetime | None = None, location: str = "") -> int:
    """Set received quantities and grades (absolute values), write the timeline, then the
    follow-ups. Shared by webhooks, polling and the CSV upload. Returns lines changed."""
    pr = portal_return
    changed = 0
    for update in updates:
        line, fields = update.line, []
        if update.received_quantity is not None:
            qty = min(update.received_quantity, line.expected_quantity)
            if qty != line.received_quantity:
                line.received_quantity = qty
                fields.append("received_quantity")
                timeline_record(system=System.ZIGZAG, kind=TimelineKind.RECEIVED, portal_return=pr,
                                occurred_at=occurred_at,
                                summary=f"Scanned {qty}/{line.expected_quantity} × {line.sku}",
                                data={"line": line.line_id, "received": qty, "source": source},
                                dedupe_key=f"zz:{pr.pk}:received:{line.line_id}:{qty}")
        if update.raw_grade and update.grade is None:
            timeline_record(system=System.ZIGZAG, kind=TimelineKind.NOTE, portal_return=pr,
                            summary=f"Unknown ZigZag grade {update.raw_grade!r} for {line.sku}: add it to the "
                                    "connection's grade map", dedupe_key=f"zz:{pr.pk}:badgrade:{line.line_id}:"
                                                                         f"{update.raw_grade[:40]}")
        if update.grade is not None and (update.grade != line.grade or update.raw_grade != line.raw_grade):
            line.grade, line.raw_grade = update.grade, update.raw_grade[:64]
            fields += ["grade", "raw_grade"]
            timeline_record(system=System.ZIGZAG, kind=TimelineKind.GRADED, portal_return=pr,
                            occurred_at=occurred_at,
                            summary=f"Graded {line.sku}: {update.grade.label.lower()}",
                            data={"line": line.line_id, "grade": update.grade, "raw": update.raw_grade,
                                  "source": source},
                            dedupe_key=f"zz:{pr.pk}:graded:{line.line_id}:{update.grade}")
        if fields:
            line.save(update_fields=fields)
            changed += 1
    all_lines = list(pr.lines.all())
    received_any = any(ln.received_quantity for ln in all_lines)
    fields = []
    if location and location != pr.warehouse_code:
        pr.warehouse_code = location
        fields.append("warehouse_code")
    if received_any and pr.received_at is None:
        pr.received_at = occurred_at or timezone.now()
        fields.append("received_at")
    if received_any and pr.stage not in RECEIVED_STAGES:
        pr.stage = Stage.RECEIVED
        fields.append("stage")
    graded_all = received_any and all(ln.grade != Grade.PENDING for ln in all_lines if ln.received_quantity)
    if graded_all and pr.inspected_at is None:
        pr.inspected_at = occurred_at or timezone.now()
        fields.append("inspected_at")
    if graded_all and pr.stage == Stage.RECEIVED:
        pr.stage = Stage.INSPECTED
        fields.append("stage")
    if fields:
        pr.save(update_fields=[*set(fields), "updated_at"])
    portal_return_follow_up(portal_return=pr)
    return changed


def portal_return_follow_up(*, portal_return: PortalReturn) -> None:
    """Receipt → TikTok received-package decision; sellable → restock; flag partial refunds.
    Each step is idempotent, so calling this after every event is safe."""
    from connectors.tiktok_shop.services import writeback_queue_decision
    from returnsync.services import portal_return_partial_refund_refresh

    pr = portal_return
    lines = list(pr.lines.select_related("order_line").all())
    received = pr.received_at is not None or any(ln.received_quantity for ln in lines)
    mreturn = pr.marketplace_return
    if received and mreturn is not None and mreturn.return_type != "REFUND":
        writeback_queue_decision(marketplace_return=mreturn, decision=RECEIVED_DECISION)
    for line in lines:
        if line.grade == Grade.SELLABLE and line.received_quantity > 0:
            _restock(pr, line)
    portal_return_partial_refund_refresh(portal_return=pr)


def _tiktok_ids(tiktok: Connection, seller_sku: str, order_line) -> tuple[str, str]:
    """(sku_id, product_id) of a seller SKU on TikTok: the order line's own ids or its
    listed bundle components first, then any order line that sold it."""
    if order_line is not None:
        if order_line.seller_sku == seller_sku and order_line.sku_id:
            return order_line.sku_id, order_line.product_id
        comp = OrderLineComponent.objects.filter(line=order_line, seller_sku=seller_sku).exclude(sku_id="").first()
        if comp is not None:
            return comp.sku_id, comp.product_id
    found = (OrderLine.objects.filter(order__connection=tiktok, seller_sku=seller_sku).exclude(sku_id="")
             .values_list("sku_id", "product_id").first())
    if found:
        return found
    comp = (OrderLineComponent.objects.filter(line__order__connection=tiktok, seller_sku=seller_sku)
            .exclude(sku_id="").values_list("sku_id", "product_id").first())
    return comp or ("", "")


def _note(pr: PortalReturn, summary: str, key: str) -> None:
    timeline_record(system=System.ZIGZAG, kind=TimelineKind.NOTE, portal_return=pr, summary=summary,
                    dedupe_key=f"zz:{pr.pk}:{key}")


def _restock(pr: PortalReturn, line: PortalReturnLine) -> None:
    from connectors.tiktok_shop.services import inventory_adjustment_queue

    tiktok = pr.marketplace_return.connection if pr.marketplace_return_id else tiktok_connection_for(pr.connection)
    if tiktok is None:
        _note(pr, "Restock skipped: no TikTok connection for this ZigZag connection", "restock:no-tiktok")
        return
    warehouses = WarehouseMapping.objects.filter(connection=pr.connection)
    warehouse = (warehouses.filter(location_code=pr.warehouse_code).first() if pr.warehouse_code else None) \
        or warehouses.filter(is_default=True).first()
    if warehouse is None:
        _note(pr, f"Restock of {line.sku} waiting: no warehouse mapping for location "
                  f"{pr.warehouse_code or '(none)'} and no default", f"restock:no-warehouse:{pr.warehouse_code}")
        return
    bundle = BundleMapping.objects.filter(bundle_sku=line.sku, is_active=True).prefetch_related("components").first()
    parts = ([(c.component_sku, c.quantity * line.received_quantity) for c in bundle.components.all()]
             if bundle else [(line.sku, line.received_quantity)])
    for sku, quantity in parts:
        sku_id, product_id = _tiktok_ids(tiktok, sku, line.order_line)
        if not sku_id:
            _note(pr, f"Restock of {sku} skipped: SKU unknown on TikTok", f"restock:unknown:{line.pk}:{sku}")
            continue
        inventory_adjustment_queue(
            connection=tiktok, seller_sku=sku, sku_id=sku_id, product_id=product_id,
            warehouse_id=warehouse.tiktok_warehouse_id, delta=quantity,
            idempotency_key=f"restock:{line.pk}:{sku}", portal_return_line=line,
        )


def connection_test(*, connection: Connection) -> str:
    """Get a token and list one page of returns. Raises ``ZigZagApiError`` when it fails."""
    from connectors.zigzag.client import ZigZagClient

    client = ZigZagClient(connection)
    client.token(force=True)
    returns, _ = client.list_returns(page=1)
    return f"Connected: token issued, {len(returns)} return(s) on the first page"
