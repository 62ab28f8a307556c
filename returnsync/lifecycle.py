"""The return lifecycle on the portal side, the same for every returns portal.

A portal connector turns what its system says into a :class:`ReturnSnapshot` (its
``mapping.py``) and hands it to ``portal_return_apply``; everything after that is here:

``portal_return_apply(connection=..., snapshot=...)``
    A portal return as the portal describes it now (webhook, poll, create answer) → our
    ``PortalReturn`` and lines, linked to the TikTok return (the TikTok return id the
    portal carries as its reference; else the TikTok order id, the anchor) and its lines
    (by the item reference, else by SKU; a component SKU maps back to its bundle line).
    A snapshot older than the stored one is ignored, so duplicated and reordered
    deliveries converge.

``portal_lines_record(portal_return=..., updates=[LineUpdate...])``
    Sets received quantities and grades (absolute values) and writes the timeline; the
    portal's CSV fallbacks call it too.

``portal_return_follow_up(portal_return=...)``
    After any change: what came back is valued (``returnsync.money``: the partial-refund
    flag, the expected refund), the refund gate (``returnsync.refund_gate``) releases the
    marketplace's full refund only when everything expected came back, passed inspection
    and the value agrees, and an item graded sellable queues one stock adjustment per SKU
    (a bundle: per component) at the mapped warehouse (``restock:{line}:{sku}``). Each
    step is idempotent, so calling it after every event is safe.

``portal_returns_refresh(order_refs=...)``
    A change listener: portal returns that reached us before their TikTok return did
    are linked as the TikTok returns arrive, and those whose TikTok return moved since
    they were last judged (a refund landed, TikTok decided by itself) are judged again.

The marketplace is reached through the registry (``returnsync.registry.marketplace_for``),
never by importing its connector.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal

from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from returnsync import registry
from returnsync.choices import Grade, Stage, TimelineKind
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
)
from returnsync.money import RECEIVED_STAGES
from returnsync.registry import ConnectorRole
from returnsync.timeline import timeline_record

logger = logging.getLogger(__name__)

# The option naming the marketplace connection a portal connection works with.
MARKETPLACE_OPTION = "tiktok_connection_id"


@dataclass
class ItemSnapshot:
    """One item of a portal return, as the portal describes it."""

    item_id: str
    item_reference: str  # what we sent when we created it (the TikTok return line), if anything
    sku: str
    name: str
    quantity: int
    received_quantity: int | None
    raw_grade: str
    grade: Grade | None  # None: the portal's grade is not in the connection's grade map
    unit_price: Decimal | None
    location: str = ""  # where the item was put away, when the portal says per item


@dataclass
class ReturnSnapshot:
    """A portal return as the portal describes it now (its ``mapping.py`` builds it)."""

    external_id: str
    reference: str  # the TikTok return id, once the portal carries it
    order_reference: str  # the TikTok order id
    raw_status: str
    stage: Stage
    tracking_number: str
    carrier: str
    location: str
    currency: str
    created_at: datetime | None
    updated_at: datetime | None
    items: list[ItemSnapshot] = field(default_factory=list)
    raw: dict = field(default_factory=dict)
    # The refund the portal authorised, once it has (on the connection's
    # ``authorized_refund_basis``: the items' price, or the total with tax and shipping).
    authorized_refund: Decimal | None = None
    # When the portal says the parcel was scanned in / inspected: a snapshot carrying several
    # changes at once must not move the receipt to the time of the latest one.
    received_at: datetime | None = None
    inspected_at: datetime | None = None


@dataclass
class LineUpdate:
    line: PortalReturnLine
    received_quantity: int | None = None
    grade: Grade | None = None
    raw_grade: str = ""
    location: str = ""


# --- which marketplace connection a portal works with ---------------------------------------


def marketplace_connection_for(connection: Connection) -> Connection | None:
    """The marketplace connection a portal connection works with: its
    ``options["tiktok_connection_id"]``, else the single enabled marketplace connection."""
    wanted = (connection.options or {}).get(MARKETPLACE_OPTION)
    qs = Connection.objects.filter(kind__in=registry.kinds(role=ConnectorRole.MARKETPLACE))
    if wanted:
        return qs.filter(pk=wanted).first()
    enabled = list(qs.filter(is_enabled=True)[:2])
    return enabled[0] if len(enabled) == 1 else None


def portal_connections_for(marketplace_connection_id: int, *, kind: str | None = None) -> list[Connection]:
    """The enabled portal connections working with this marketplace connection."""
    portals = Connection.objects.filter(kind__in=registry.kinds(role=ConnectorRole.RETURNS_PORTAL), is_enabled=True)
    if kind is not None:
        portals = portals.filter(kind=kind)
    return [c for c in portals
            if (m := marketplace_connection_for(c)) is not None and m.pk == marketplace_connection_id]


def marketplace_sku_ids(marketplace: Connection, seller_sku: str, order_line) -> tuple[str, str]:
    """(sku_id, product_id) of a seller SKU on the marketplace: the order line's own ids or
    its listed bundle components first, then any order line that sold it."""
    if order_line is not None:
        if order_line.seller_sku == seller_sku and order_line.sku_id:
            return order_line.sku_id, order_line.product_id
        comp = OrderLineComponent.objects.filter(line=order_line, seller_sku=seller_sku).exclude(sku_id="").first()
        if comp is not None:
            return comp.sku_id, comp.product_id
    found = (OrderLine.objects.filter(order__connection=marketplace, seller_sku=seller_sku).exclude(sku_id="")
             .values_list("sku_id", "product_id").first())
    if found:
        return found
    comp = (OrderLineComponent.objects.filter(line__order__connection=marketplace, seller_sku=seller_sku)
            .exclude(sku_id="").values_list("sku_id", "product_id").first())
    return comp or ("", "")


# --- linking ---------------------------------------------------------------------------------


def portal_returns_refresh(*, order_refs) -> int:
    """A change listener, called as TikTok returns arrive or change: link the portal returns
    that reached us before their TikTok return did, and judge again those whose TikTok
    return moved since they were last judged (a refund landed, TikTok decided by itself,
    its figure changed). Returns how many were linked or judged again."""
    refs = sorted({r for r in order_refs if r})
    if not refs:
        return 0
    linked = portal_returns_link(order_refs=refs)
    moved = (PortalReturn.objects.filter(order_ref__in=refs, marketplace_return__isnull=False)
             .filter(marketplace_return__updated_at__gt=F("updated_at"))
             .select_related("connection", "marketplace_return__connection"))
    judged = 0
    for pr in moved:
        portal_return_follow_up(portal_return=pr, notify=False)  # the TikTok sync notified already
        judged += 1
    return linked + judged


def portal_returns_link(*, order_refs) -> int:
    """Link portal returns that reached us before their TikTok return did (their reference
    is a TikTok return id we had not synced yet), then act on what they already say (a
    receipt releases the refund, grading the restock)."""
    refs = sorted({r for r in order_refs if r})
    if not refs:
        return 0
    # Nearly always there is nothing to link: one indexed query says so before any row is
    # loaded (this runs after every polled page; issue 12's ingest regression).
    waiting = PortalReturn.objects.filter(
        marketplace_return__isnull=True,
        return_ref__in=MarketplaceReturn.objects.filter(order_ref__in=refs).values("return_id"))
    if not waiting.exists():
        return 0
    returns = MarketplaceReturn.objects.filter(order_ref__in=refs).only(
        "id", "connection_id", "return_id", "order_ref", "order_id")
    by_return_id: dict[tuple[int, str], MarketplaceReturn] = {(m.connection_id, m.return_id): m for m in returns}
    if not by_return_id:
        return 0
    linked = 0
    candidates = PortalReturn.objects.filter(marketplace_return__isnull=True,
                                             return_ref__in=sorted({rid for _, rid in by_return_id}))
    for pr in candidates.select_related("connection"):
        marketplace = marketplace_connection_for(pr.connection)
        mreturn = by_return_id.get((marketplace.pk, pr.return_ref)) if marketplace else None
        if mreturn is None:
            continue
        if PortalReturn.objects.filter(pk=pr.pk, marketplace_return__isnull=True).update(
                marketplace_return=mreturn, order_id=mreturn.order_id, order_ref=pr.order_ref or mreturn.order_ref,
                updated_at=timezone.now()) != 1:
            continue  # linked meanwhile
        pr.refresh_from_db()
        timeline_record(system=pr.connection.kind, kind=TimelineKind.LINKED, marketplace_return=mreturn,
                        summary=f"Linked to {pr.connection.get_kind_display()} return {pr.external_id}",
                        data={"portal_return": pr.pk}, dedupe_key=f"portal:{pr.pk}:linked")
        portal_return_follow_up(portal_return=pr)
        linked += 1
    return linked


def _order_line_for(mreturn: MarketplaceReturn | None, order: Order | None, item_reference: str):
    if not item_reference or order is None:
        return None
    line_id = item_reference.split(":", 1)[0]
    order_line_id = ""
    if mreturn is not None:
        order_line_id = MarketplaceReturnLine.objects.filter(
            marketplace_return=mreturn, line_id=line_id).values_list("order_line_id", flat=True).first() or ""
    return OrderLine.objects.filter(order=order, line_id=order_line_id or line_id).first()


# --- applying what the portal says -----------------------------------------------------------


@transaction.atomic
def portal_return_apply(*, connection: Connection, snapshot: ReturnSnapshot, source: str,
                        event_name: str = "", occurred_at: datetime | None = None) -> tuple[PortalReturn, str]:
    """Store a portal return as the portal describes it; ``(portal_return, "created"|"updated"|"stale")``.

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
    system, label = connection.kind, connection.get_kind_display()
    marketplace = marketplace_connection_for(connection)
    mreturn = order = None
    if snapshot.reference and marketplace is not None:
        mreturn = MarketplaceReturn.objects.filter(connection=marketplace, return_id=snapshot.reference).first()
    order_ref = snapshot.order_reference or (mreturn.order_ref if mreturn else "")
    if order_ref and marketplace is not None:
        order = Order.objects.filter(connection=marketplace, order_id=order_ref).first()
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
    if pr.marketplace_return_id:  # once linked, the TikTok ids are the anchor (a link made by hand stays)
        pr.order_ref, pr.return_ref = pr.marketplace_return.order_ref, pr.marketplace_return.return_id
    if snapshot.received_at is not None:  # the portal's own scan time is the receipt time
        pr.received_at = snapshot.received_at
    elif snapshot.raw_status and pr.stage in RECEIVED_STAGES and pr.received_at is None:
        pr.received_at = occurred_at or snapshot.updated_at or timezone.now()
    if snapshot.inspected_at is not None:
        pr.inspected_at = snapshot.inspected_at
    elif snapshot.raw_status and pr.stage == Stage.INSPECTED and pr.inspected_at is None:
        pr.inspected_at = occurred_at or snapshot.updated_at or timezone.now()
    pr.save()
    when = occurred_at or snapshot.updated_at
    if created:
        timeline_record(system=system, kind=TimelineKind.CREATED, portal_return=pr, occurred_at=when,
                        summary=f"{label} return {pr.external_id} opened ({pr.raw_status or 'no status'})",
                        dedupe_key=f"portal:{pr.pk}:created")
        if mreturn is not None:
            timeline_record(system=system, kind=TimelineKind.LINKED, marketplace_return=mreturn,
                            summary=f"Mirrored to {label} as {pr.external_id}", data={"portal_return": pr.pk},
                            dedupe_key=f"portal:{pr.pk}:linked")
    if not created and before[0] != pr.raw_status:
        timeline_record(system=system, kind=TimelineKind.STATUS_CHANGED, portal_return=pr, occurred_at=when,
                        summary=f"{label}: {before[0] or '—'} → {pr.raw_status}",
                        data={"event": event_name, "source": source},
                        dedupe_key=f"portal:{pr.pk}:status:{pr.raw_status}")
    if pr.tracking_number and before[1] != pr.tracking_number:
        timeline_record(system=system,
                        kind=TimelineKind.LABEL_CREATED if not before[1] else TimelineKind.TRACKING_UPDATED,
                        portal_return=pr, occurred_at=when,
                        summary=f"Label {pr.carrier or ''} {pr.tracking_number}".replace("  ", " "),
                        dedupe_key=f"portal:{pr.pk}:tracking:{pr.tracking_number}")
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
                                  grade=item.grade if item.raw_grade else None, raw_grade=item.raw_grade,
                                  location=item.location))
    portal_lines_record(portal_return=pr, updates=updates, source=source, occurred_at=when)
    return pr, "created" if created else "updated"


def portal_lines_record(*, portal_return: PortalReturn, updates: list[LineUpdate], source: str,
                        occurred_at: datetime | None = None, location: str = "") -> int:
    """Set received quantities and grades (absolute values), write the timeline, then the
    follow-ups. Shared by webhooks, polling and the CSV uploads. Returns lines changed."""
    pr = portal_return
    system = pr.connection.kind
    changed = 0
    for update in updates:
        line, fields = update.line, []
        if update.received_quantity is not None:
            qty = min(update.received_quantity, line.expected_quantity)
            if qty != line.received_quantity:
                line.received_quantity = qty
                fields.append("received_quantity")
                timeline_record(system=system, kind=TimelineKind.RECEIVED, portal_return=pr,
                                occurred_at=occurred_at,
                                summary=f"Scanned {qty}/{line.expected_quantity} × {line.sku}",
                                data={"line": line.line_id, "received": qty, "source": source},
                                dedupe_key=f"portal:{pr.pk}:received:{line.line_id}:{qty}")
        if update.raw_grade and update.grade is None:
            timeline_record(system=system, kind=TimelineKind.NOTE, portal_return=pr,
                            summary=f"Unknown {pr.connection.get_kind_display()} grade {update.raw_grade!r} for "
                                    f"{line.sku}: add it to the connection's grade map",
                            dedupe_key=f"portal:{pr.pk}:badgrade:{line.line_id}:{update.raw_grade[:40]}")
        if update.grade is not None and (update.grade != line.grade or update.raw_grade != line.raw_grade):
            line.grade, line.raw_grade = update.grade, update.raw_grade[:64]
            fields += ["grade", "raw_grade"]
            timeline_record(system=system, kind=TimelineKind.GRADED, portal_return=pr,
                            occurred_at=occurred_at,
                            summary=f"Graded {line.sku}: {update.grade.label.lower()}",
                            data={"line": line.line_id, "grade": update.grade, "raw": update.raw_grade,
                                  "source": source},
                            dedupe_key=f"portal:{pr.pk}:graded:{line.line_id}:{update.grade}")
        if update.location and update.location[:64] != line.location_code:
            line.location_code = update.location[:64]
            fields.append("location_code")
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


# --- follow-ups ------------------------------------------------------------------------------


def portal_return_follow_up(*, portal_return: PortalReturn, notify: bool = True) -> None:
    """What came back is valued, the refund gate judges the release (sent only when
    everything agrees), sellable items are restocked. Each step is idempotent, so calling
    this after every event is safe. The change listeners are told unless ``notify`` is
    False (the caller is one of them)."""
    from returnsync.refund_gate import release_apply
    from returnsync.services import portal_return_refund_refresh

    pr = portal_return
    expectation = portal_return_refund_refresh(portal_return=pr, notify=notify)
    release_apply(portal_return=pr, expectation=expectation)
    PortalReturn.objects.filter(pk=pr.pk).update(updated_at=timezone.now())  # judged as of now
    for line in pr.lines.select_related("order_line").all():
        if line.grade == Grade.SELLABLE and line.received_quantity > 0:
            _restock(pr, line)


def _note(pr: PortalReturn, summary: str, key: str) -> None:
    timeline_record(system=pr.connection.kind, kind=TimelineKind.NOTE, portal_return=pr, summary=summary,
                    dedupe_key=f"portal:{pr.pk}:{key}")


def _restock(pr: PortalReturn, line: PortalReturnLine) -> None:
    marketplace = (pr.marketplace_return.connection if pr.marketplace_return_id
                   else marketplace_connection_for(pr.connection))
    if marketplace is None:
        _note(pr, f"Restock skipped: no TikTok connection for this {pr.connection.get_kind_display()} connection",
              "restock:no-tiktok")
        return
    location = line.location_code or pr.warehouse_code
    warehouses = WarehouseMapping.objects.filter(connection=pr.connection)
    warehouse = (warehouses.filter(location_code=location).first() if location else None) \
        or warehouses.filter(is_default=True).first()
    if warehouse is None:
        _note(pr, f"Restock of {line.sku} waiting: no warehouse mapping for location "
                  f"{location or '(none)'} and no default", f"restock:no-warehouse:{location}")
        return
    bundle = BundleMapping.objects.filter(bundle_sku=line.sku, is_active=True).prefetch_related("components").first()
    parts = ([(c.component_sku, c.quantity * line.received_quantity) for c in bundle.components.all()]
             if bundle else [(line.sku, line.received_quantity)])
    ops = registry.marketplace_for(marketplace)
    for sku, quantity in parts:
        sku_id, product_id = marketplace_sku_ids(marketplace, sku, line.order_line)
        if not sku_id:
            _note(pr, f"Restock of {sku} skipped: SKU unknown on TikTok", f"restock:unknown:{line.pk}:{sku}")
            continue
        ops.stock_adjust(
            connection=marketplace, seller_sku=sku, sku_id=sku_id, product_id=product_id,
            warehouse_id=warehouse.tiktok_warehouse_id, delta=quantity,
            idempotency_key=f"restock:{line.pk}:{sku}", portal_return_line=line,
        )


# --- refunds the portal reports ---------------------------------------------------------------


def portal_refund_record(*, portal_return: PortalReturn, external_id: str, amount: Decimal, currency: str,
                         status: str, refunded_at: datetime | None = None, raw_status: str = "",
                         raw: dict | None = None):
    """Store a refund the portal reports (its own id; the same id again updates the row), put
    it on the return's timeline once per status, and tell the listeners. Returns the row."""
    from returnsync.models import Refund
    from returnsync.services import changes_notify

    pr = portal_return
    refund, created = Refund.objects.update_or_create(
        connection=pr.connection, external_id=str(external_id)[:64],
        defaults={"order_ref": pr.order_ref, "portal_return": pr, "marketplace_return": pr.marketplace_return,
                  "amount": amount, "currency": (currency or pr.currency)[:3], "status": status,
                  "raw_status": raw_status[:64], "refunded_at": refunded_at, "raw": raw or {}},
    )
    timeline_record(system=pr.connection.kind, kind=TimelineKind.REFUND, portal_return=pr, occurred_at=refunded_at,
                    summary=f"{pr.connection.get_kind_display()} refund {refund.external_id}: {amount} "
                            f"{refund.currency} ({refund.get_status_display().lower()})",
                    data={"refund": refund.pk, "status": status},
                    dedupe_key=f"portal-refund:{refund.pk}:{status}:{amount}")
    changes_notify(order_refs=[pr.order_ref])
    return refund


# --- linking by hand ----------------------------------------------------------------------------


class LinkRefused(ValueError):
    """The records cannot be linked as asked; the message says why."""


def portal_return_link_by_hand(*, portal_return: PortalReturn, marketplace_return: MarketplaceReturn,
                               user) -> PortalReturn:
    """Operations links a portal record that matched nothing (a mistyped order number, an
    order from before the sync) to the TikTok return it belongs to: the TikTok ids become
    its anchor and reference, its lines are matched to the order's by SKU, the timeline says
    who did it, and everything that follows a link runs (the refund gate, restocks). The
    portal itself is not changed: correct it there too, or its next snapshot keeps the link."""
    from returnsync.roles import Role, has_any_role

    if not has_any_role(user, frozenset({Role.OPERATIONS})):
        raise PermissionDenied("Only operations (or an admin) links records by hand.")
    marketplace = marketplace_connection_for(portal_return.connection)
    if marketplace is not None and marketplace_return.connection_id != marketplace.pk:
        raise LinkRefused(f"That TikTok return belongs to {marketplace_return.connection}, not to the shop "
                          f"{portal_return.connection} works with ({marketplace}).")
    with transaction.atomic():
        pr = PortalReturn.objects.select_for_update().get(pk=portal_return.pk)
        if pr.marketplace_return_id is not None:
            raise LinkRefused(f"Already linked to TikTok return {pr.return_ref}.")
        taken = PortalReturn.objects.filter(
            Q(marketplace_return=marketplace_return) | Q(return_ref=marketplace_return.return_id),
            connection=pr.connection).exclude(pk=pr.pk)
        if taken.exists():
            raise LinkRefused(f"TikTok return {marketplace_return.return_id} already has a "
                              f"{pr.connection.get_kind_display()} record.")
        before = (pr.order_ref, pr.return_ref)
        pr.marketplace_return = marketplace_return
        pr.order_id = marketplace_return.order_id
        pr.order_ref, pr.return_ref = marketplace_return.order_ref, marketplace_return.return_id
        pr.save(update_fields=["marketplace_return", "order", "order_ref", "return_ref", "updated_at"])
        order_lines = {ol.seller_sku: ol for ol in OrderLine.objects.filter(order_id=marketplace_return.order_id)}
        for line in pr.lines.filter(order_line__isnull=True):
            if line.sku in order_lines:
                line.order_line = order_lines[line.sku]
                line.save(update_fields=["order_line"])
        # On the portal record, now linked: the return's timeline shows it too.
        timeline_record(system=pr.connection.kind, kind=TimelineKind.LINKED, actor=user, portal_return=pr,
                        summary=(f"Linked by hand: {pr.connection.get_kind_display()} return {pr.external_id} ↔ "
                                 f"TikTok return {marketplace_return.return_id} (it carried order "
                                 f"{before[0] or '—'})"),
                        data={"portal_return": pr.pk, "marketplace_return": marketplace_return.pk,
                              "before": {"order_ref": before[0], "return_ref": before[1]}},
                        dedupe_key=f"portal:{pr.pk}:linked-by-hand:{marketplace_return.pk}")
        portal_return_follow_up(portal_return=pr)
    return pr
