"""ZigZag: mirror TikTok returns into ZigZag (ZigZag owns the return from label to
warehouse disposition, so every TikTok return that sends a parcel back needs one).

``mirror_for_orders(order_refs=...)``
    Change listener (``returnsync.registry.change_listener_register``): the TikTok returns of these
    orders that need a parcel back and have no ZigZag record get a mirror write-back
    queued at once. ``mirror_sweep()`` is the periodic backstop over every order.

``mirror_queue`` / ``mirror_run``
    One ``WriteBack(action=create_portal_return)`` per (ZigZag connection, TikTok return),
    key ``zigzag:{conn}:{return_id}:create``. The run claims it with a conditional update
    and creates the ZigZag return with the TikTok return id as its unique ``reference``,
    so a retry after a lost answer finds the same return (409 + the existing one). A
    return that cannot be mirrored is ``dead`` with the reason in ``last_error`` (and a
    timeline note): visible, and retryable (``returnsync.services.write_back_retry``).

What ZigZag then reports (webhooks, the poll, the create answer, the CSV upload) is
applied by the portal-independent lifecycle (``returnsync.lifecycle``): receipt and
grading per line, the refund release, restocks, the partial-refund task.
"""
from __future__ import annotations

import logging

from django.db import transaction
from django.db.models import Q

from connectors.jobs import write_back_create_once, write_back_enqueue
from connectors.zigzag import mapping
from returnsync.choices import System, TimelineKind, WriteBackAction
from returnsync.lifecycle import marketplace_connection_for, portal_return_apply
from returnsync.models import (
    BundleMapping,
    Connection,
    MarketplaceReturn,
    Order,
    PortalReturn,
    WriteBack,
)
from returnsync.money import CENT, bundle_component_totals
from returnsync.registry import ActionRunner, RunResult
from returnsync.timeline import timeline_record

logger = logging.getLogger(__name__)


class MirrorError(Exception):
    """The TikTok return cannot be mirrored as it stands (a person must look)."""

    retryable = False


class MirrorNotReady(Exception):
    """Not yet (the order has not been fetched): try again later."""

    retryable = True


def _needs_parcel(connection: Connection) -> Q:
    cfg = mapping.config(connection)
    return Q(return_type__in=cfg["mirror_return_types"], stage__in=cfg["mirror_stages"])


def mirror_key(*, connection: Connection, return_id: str) -> str:
    return f"zigzag:{connection.pk}:{return_id}:create"


# --- mirror ------------------------------------------------------------------------------


def mirror_for_orders(*, order_refs) -> int:
    """Queue the mirror of every TikTok return of these orders that needs a ZigZag return
    (a change listener: runs after the lifecycle linked what ZigZag already had)."""
    refs = {r for r in order_refs if r}
    if not refs:
        return 0
    queued = 0
    for zz in Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True):
        tiktok = marketplace_connection_for(zz)
        if tiktok is None:
            continue
        candidates = MarketplaceReturn.objects.filter(_needs_parcel(zz), connection=tiktok, order_ref__in=refs)
        queued += _mirror_missing(zz, candidates)
    return queued


def mirror_sweep() -> int:
    """Backstop: queue the mirror of anything a listener missed (run periodically)."""
    queued = 0
    for zz in Connection.objects.filter(kind=System.ZIGZAG, is_enabled=True):
        tiktok = marketplace_connection_for(zz)
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
        write_back_enqueue(write_back=write_back)
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


def mirror_run(*, write_back: WriteBack, client) -> RunResult:
    """Create the ZigZag return for one queued mirror (the ``ActionRunner`` of
    ``create_portal_return``: the shared runner claims the row and records the outcome)."""
    mreturn = write_back.marketplace_return
    if mreturn is None:
        raise MirrorError("the TikTok return no longer exists")
    data = client.create_return(mirror_payload(marketplace_return=mreturn))
    portal_return, _ = portal_return_apply(
        connection=write_back.connection, snapshot=mapping.return_from_payload(write_back.connection, data),
        source="create")
    return RunResult(summary=f"ZigZag return {portal_return.external_id} created", portal_return=portal_return)


WRITE_BACK_RUNNERS = {
    WriteBackAction.CREATE_PORTAL_RETURN: ActionRunner(
        run=mirror_run, failed=lambda write_back: "ZigZag return not created",
        gave_up="unmirrored, needs a person"),
}


def connection_test(*, connection: Connection) -> str:
    """Get a token and list one page of returns. Raises ``ZigZagApiError`` when it fails."""
    from connectors.zigzag.client import ZigZagClient

    client = ZigZagClient(connection)
    client.token(force=True)
    returns, _ = client.list_returns(page=1)
    return f"Connected: token issued, {len(returns)} return(s) on the first page"
