"""Outbound to TikTok Shop: seller decisions on returns and stock updates.

The services later issues call:

``writeback_queue_decision(marketplace_return=..., decision="APPROVE_RECEIVED_PACKAGE")``
    Queue a decision (approve/reject a refund, a return, a received package; offer a
    partial refund). The ``idempotency_key`` is deterministic
    (``tiktok:{connection}:{return_id}:{decision}``): queuing the same decision twice
    yields one ``WriteBack`` row, and every attempt sends the same key to TikTok, so TikTok
    applies it once. The run is enqueued after commit.

``decision_run(write_back=..., client=...)``
    The ``ActionRunner`` of every decision: the shared runner (``connectors.jobs``) claims
    the row, calls it, and records the outcome. Success, or TikTok's "already approved"
    (25020010) / "already received" (25020011), is ``succeeded``; TikTok's "cannot approve
    receipt yet" (25011013) retries on the backoff (TikTok learns of a delivery from the
    carrier, often after the warehouse scanned it); any other final error is ``dead``.

``inventory_adjustment_queue(...)`` / ``inventory_adjustment_apply(adjustment_id=...)``
    Put restocked units back on sale. See ``inventory_adjustment_apply`` for why it reads
    the current quantity first instead of keeping a ledger.

``MARKETPLACE``
    What the portal-side lifecycle (``returnsync.lifecycle``) asks of TikTok, through the
    registry: release the refund after receipt, adjust stock.
"""
from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F
from django.utils import timezone

from connectors.jobs import (
    due_q,
    exclusive,
    job_claim,
    job_enqueue,
    job_fail,
    write_back_create_once,
    write_back_enqueue,
)
from connectors.tiktok_shop import mapping
from returnsync.choices import JobStatus, System, TimelineKind, WriteBackAction
from returnsync.models import InventoryAdjustment, MarketplaceReturn, WriteBack
from returnsync.registry import ActionRunner, RunResult
from returnsync.timeline import timeline_record

logger = logging.getLogger(__name__)

APPROVE_DECISIONS = {
    "APPROVE_REFUND": WriteBackAction.APPROVE_REFUND,
    "APPROVE_RETURN": WriteBackAction.APPROVE_RETURN,
    "APPROVE_RECEIVED_PACKAGE": WriteBackAction.APPROVE_RECEIVED_PACKAGE,
    "APPROVE_REPLACEMENT": "approve_replacement",
    "ISSUE_REPLACEMENT_REFUND": "issue_replacement_refund",
    "OFFER_PARTIAL_REFUND": WriteBackAction.OFFER_PARTIAL_REFUND,
}
REJECT_DECISIONS = {
    "REJECT_REFUND": "reject_refund",
    "REJECT_RETURN": "reject_return",
    "REJECT_RECEIVED_PACKAGE": WriteBackAction.REJECT_RECEIVED_PACKAGE,
    "REJECT_REPLACEMENT": "reject_replacement",
}
# Decisions that move money on TikTok: approving a received package or a refund releases
# the full refund; an accepted partial-refund offer pays the offered amount.
MONEY_RELEASING_ACTIONS = (WriteBackAction.APPROVE_RECEIVED_PACKAGE, WriteBackAction.APPROVE_REFUND,
                           WriteBackAction.OFFER_PARTIAL_REFUND)
# TikTok's answers meaning "this is already done": the write-back has succeeded.
DONE_CODES = frozenset({25020010, 25020011})
# Answers meaning "not yet" for a decision: TikTok learns of a delivery from the carrier,
# often after the warehouse has scanned the parcel, so "cannot approve receipt" now may
# succeed on a later attempt; the write-back retries on its backoff instead of dying.
NOT_YET_CODES = {"APPROVE_RECEIVED_PACKAGE": frozenset({25011013})}
INVENTORY_TASK = "connectors.tiktok_shop.tasks.inventory_adjustment_task"


def _client(connection):
    from connectors.tiktok_shop.client import TikTokClient

    return TikTokClient(connection)


def decision_idempotency_key(*, marketplace_return: MarketplaceReturn, decision: str, amount: str = "") -> str:
    """One key per decision on a return. An offer's key also carries its amount and the
    version of TikTok's return it answers: pressed twice it is one offer, while after the
    buyer rejected it (TikTok's return moved on) it may be made again."""
    key = f"tiktok:{marketplace_return.connection_id}:{marketplace_return.return_id}:{decision}"
    if not amount:
        return key
    version = int(marketplace_return.source_updated_at.timestamp()) if marketplace_return.source_updated_at else 0
    return f"{key}:{amount}@{version}"


def writeback_queue_decision(
    *, marketplace_return: MarketplaceReturn, decision: str, partial_refund: dict | None = None,
    reject_reason: str = "", comment: str = "", actor=None, attempt: int = 1,
) -> WriteBack:
    """Queue a seller decision on a TikTok return (idempotent: one row per decision; a
    deliberate re-send after TikTok recorded nothing is ``attempt`` 2, 3...)."""
    decision = decision.strip().upper()
    if decision not in APPROVE_DECISIONS and decision not in REJECT_DECISIONS:
        raise ValueError(f"unknown TikTok decision {decision!r}")
    if decision == "OFFER_PARTIAL_REFUND":
        if not partial_refund or Decimal(str(partial_refund.get("amount", "0"))) <= 0:
            raise ValueError("OFFER_PARTIAL_REFUND needs partial_refund={'amount': ..., 'currency': ...}")
        partial_refund = {"amount": str(Decimal(str(partial_refund["amount"])).quantize(Decimal("0.01"))),
                          "currency": partial_refund.get("currency") or marketplace_return.currency}
    key = decision_idempotency_key(marketplace_return=marketplace_return, decision=decision,
                                   amount=partial_refund["amount"] if partial_refund else "")
    if attempt > 1:
        key = f"{key}:resend-{attempt}"
    payload = {"return_id": marketplace_return.return_id, "decision": decision,
               "kind": "approve" if decision in APPROVE_DECISIONS else "reject"}
    if partial_refund:
        payload["partial_refund"] = partial_refund
    if reject_reason:
        payload["reject_reason"] = reject_reason
    if comment:
        payload["comment"] = comment
    with transaction.atomic():
        write_back, created = write_back_create_once(
            idempotency_key=key, connection_id=marketplace_return.connection_id,
            action=APPROVE_DECISIONS.get(decision) or REJECT_DECISIONS[decision],
            marketplace_return=marketplace_return, payload=payload,
        )
        if not created:
            return write_back
        timeline_record(
            system=System.TIKTOK_SHOP, kind=TimelineKind.WRITE_BACK, marketplace_return=marketplace_return,
            summary=f"Queued {decision} on TikTok", data={"write_back": write_back.pk, "decision": decision},
            actor=actor, dedupe_key=f"writeback:{write_back.pk}:queued",
        )
        write_back_enqueue(write_back=write_back)
    return write_back


def decision_run(*, write_back: WriteBack, client) -> RunResult:
    """Send one queued decision to TikTok (the shared runner claims and records it)."""
    from connectors.tiktok_shop.client import TikTokApiError

    payload = write_back.payload or {}
    decision = payload.get("decision")
    try:
        if payload.get("kind") == "reject":
            client.reject_return(payload["return_id"], decision=decision, idempotency_key=write_back.idempotency_key,
                                 reject_reason=payload.get("reject_reason", ""), comment=payload.get("comment", ""))
        else:
            client.approve_return(payload["return_id"], decision=decision, idempotency_key=write_back.idempotency_key,
                                  partial_refund=payload.get("partial_refund"))
    except TikTokApiError as exc:
        if exc.code in DONE_CODES:
            return RunResult(summary=f"TikTok: {decision} already done ({exc.code})", api_code=str(exc.code))
        if exc.code in NOT_YET_CODES.get(decision, ()):
            exc.retryable = True
        raise
    return RunResult(summary=f"TikTok accepted {decision}", api_code="0")


def _decision_failed(write_back: WriteBack) -> str:
    return f"TikTok did not take {(write_back.payload or {}).get('decision')}"


# --- inventory ------------------------------------------------------------------------------


def inventory_adjustment_queue(
    *, connection, seller_sku: str, sku_id: str, product_id: str, warehouse_id: str, delta: int,
    idempotency_key: str, portal_return_line=None, reason: str = "restock",
) -> InventoryAdjustment:
    """Queue a stock change (idempotent on ``idempotency_key``; the cause decides the key,
    e.g. ``restock:{portal_line_id}:{component}``). Creates the ``WriteBack`` that carries
    attempts/backoff and the read/target bookkeeping."""
    with transaction.atomic():
        adjustment = InventoryAdjustment.objects.filter(idempotency_key=idempotency_key).first()
        if adjustment is not None:
            return adjustment
        write_back, _ = WriteBack.objects.get_or_create(
            idempotency_key=f"inventory:{idempotency_key}",
            defaults={"connection": connection, "action": WriteBackAction.UPDATE_INVENTORY,
                      "payload": {"sku_id": sku_id, "product_id": product_id, "warehouse_id": warehouse_id,
                                  "delta": delta}},
        )
        adjustment = InventoryAdjustment.objects.create(
            seller_sku=seller_sku, sku_id=sku_id, product_id=product_id, warehouse_id=warehouse_id,
            delta=delta, reason=reason, idempotency_key=idempotency_key,
            portal_return_line=portal_return_line, write_back=write_back,
        )
        job_enqueue(INVENTORY_TASK, adjustment.pk, f"tiktok-inventory-{adjustment.pk}")
    return adjustment


class StockMoved(Exception):
    """The stock is neither what we read before nor what we wrote: a person must look."""

    retryable = False


class StockUnknown(Exception):
    """TikTok's inventory read does not say what the stock is (the SKU or the warehouse is
    missing from the answer, or a quantity is not a number). Writing anyway would set an
    absolute quantity we never read: a person must look."""

    retryable = False


def _warehouse_quantities(inventory, sku_id: str, warehouse_id: str) -> tuple[str, dict[str, int]]:
    """The SKU's product id and its quantity per warehouse, exactly as TikTok read them.
    Raises ``StockUnknown`` when the answer does not contain the SKU, our warehouse, or a
    readable quantity for every warehouse listed: a missing row is unknown stock, not zero."""
    from connectors.tiktok_shop.mapping import as_int

    products = inventory if isinstance(inventory, list) else []
    for product in products:
        skus = product.get("skus") if isinstance(product, dict) else None
        for sku in skus if isinstance(skus, list) else []:
            if not isinstance(sku, dict) or str(sku.get("id")) != str(sku_id):
                continue
            rows = sku.get("warehouse_inventory")
            quantities: dict[str, int] = {}
            for row in rows if isinstance(rows, list) else []:
                if not isinstance(row, dict) or not str(row.get("warehouse_id") or "").strip():
                    raise StockUnknown(f"TikTok's inventory read for SKU {sku_id} has a warehouse row without an id")
                quantity = as_int(row.get("available_quantity"))
                if quantity is None or quantity < 0:
                    raise StockUnknown(f"TikTok's inventory read for SKU {sku_id} at {row.get('warehouse_id')} "
                                       f"has no readable quantity ({row.get('available_quantity')!r})")
                quantities[str(row["warehouse_id"]).strip()] = quantity
            if str(warehouse_id) not in quantities:
                listed = ", ".join(sorted(quantities)) or "none"
                raise StockUnknown(f"TikTok's inventory read for SKU {sku_id} does not list warehouse {warehouse_id} "
                                   f"(it lists: {listed}); stock unknown, nothing written")
            return str(product.get("product_id") or ""), quantities
    raise StockUnknown(f"TikTok's inventory read does not contain SKU {sku_id}; stock unknown, nothing written")


def inventory_adjustment_apply(*, adjustment_id: int, client=None) -> InventoryAdjustment:
    """Apply a stock delta on TikTok, whose API only sets ABSOLUTE quantities.

    Read-first, not a ledger: TikTok's quantity moves with every sale and every edit made
    in Seller Center, none of which we see, so a ledger of our own would drift from the
    truth and then overwrite it. Instead each attempt reads the current quantities
    (``search_inventory``), writes ``current + delta`` for our warehouse (and the current
    value for the SKU's other warehouses, since an update lists them all), and records
    ``before`` and ``target`` on the adjustment's ``WriteBack.payload`` *before* sending.
    A retry after a crash or a lost response can then tell:

    - current == target → it was applied: done, nothing sent (no double restock);
    - current == before → it was not: send it again;
    - anything else → stock moved meanwhile and the two cases cannot be told apart, so the
      adjustment goes ``dead`` for a person to check (never guess with stock).

    A read that does not contain the SKU, our warehouse, or a readable quantity for each of
    the SKU's warehouses is unknown stock, not zero: the adjustment goes ``dead`` with that
    reason (``StockUnknown``) and nothing is written.

    Remaining risk, inherent to an absolute API: a sale landing between our read and our
    write is overwritten (the window is one round trip).
    """
    from connectors.tiktok_shop.client import TikTokApiError

    now = timezone.now()
    if not job_claim(InventoryAdjustment, adjustment_id, now):
        return InventoryAdjustment.objects.get(pk=adjustment_id)
    adjustment = InventoryAdjustment.objects.select_related("write_back__connection").get(pk=adjustment_id)
    write_back = adjustment.write_back
    if write_back is None:
        raise ValueError("inventory adjustment without a write-back: queue it with inventory_adjustment_queue")
    counted = WriteBack.objects.filter(pk=write_back.pk, attempts__lt=F("max_attempts")).update(
        attempts=F("attempts") + 1, status=JobStatus.RUNNING, updated_at=now)
    write_back.refresh_from_db()
    if not counted:  # attempts used up
        write_back.status = adjustment.status = JobStatus.DEAD
        write_back.save(update_fields=["status", "updated_at"])
        adjustment.save(update_fields=["status", "updated_at"])
        return adjustment
    client = client or _client(write_back.connection)
    payload = dict(write_back.payload or {})
    # One adjustment of a SKU at a time, across workers: two restocks of the same SKU reading
    # 104 at once would both write 105 (the API sets absolute quantities), and an answer lost
    # and sent again must not land after another adjustment's write (found by bench/soak.py).
    key = f"tiktok-stock:{write_back.connection_id}:{adjustment.sku_id}"
    try:
        with exclusive(key):
            product_id, quantities = _warehouse_quantities(client.search_inventory(sku_ids=[adjustment.sku_id]),
                                                           adjustment.sku_id, adjustment.warehouse_id)
            product_id = product_id or adjustment.product_id
            current = quantities[adjustment.warehouse_id]
            done = False
            if "target" in payload:  # an earlier attempt may have been applied
                if current == payload["target"]:
                    done = True
                elif current != payload["before"]:
                    raise StockMoved(
                        f"stock at {adjustment.warehouse_id} is {current}: neither before ({payload['before']}) "
                        f"nor target ({payload['target']}); check by hand"
                    )
            if not done:
                payload.update(before=current, target=max(current + adjustment.delta, 0))
                WriteBack.objects.filter(pk=write_back.pk).update(payload=payload)  # committed before sending
                quantities[adjustment.warehouse_id] = payload["target"]
                data = client.update_inventory(product_id, [{
                    "id": adjustment.sku_id,
                    "inventory": [{"warehouse_id": wh, "quantity": qty} for wh, qty in sorted(quantities.items())],
                }]) or {}
                if data.get("errors"):
                    raise TikTokApiError(f"inventory update errors: {data['errors']}"[:500], retryable=False)
    except Exception as exc:
        job_fail(write_back, exc, timezone.now())
        adjustment.status = write_back.status
        adjustment.last_error = write_back.last_error
    else:
        write_back.status = adjustment.status = JobStatus.SUCCEEDED
        write_back.succeeded_at = adjustment.applied_at = timezone.now()
        write_back.last_error = adjustment.last_error = ""
    write_back.save(update_fields=["status", "succeeded_at", "next_attempt_at", "last_error",
                                   "last_http_status", "last_api_code", "updated_at"])
    adjustment.save(update_fields=["status", "applied_at", "last_error", "updated_at"])
    line = adjustment.portal_return_line
    if line is not None and adjustment.status in (JobStatus.SUCCEEDED, JobStatus.DEAD):
        timeline_record(
            system=System.TIKTOK_SHOP, kind=TimelineKind.RESTOCK, portal_return=line.portal_return,
            summary=(f"Restocked {adjustment.delta:+d} × {adjustment.seller_sku} at {adjustment.warehouse_id}"
                     if adjustment.status == JobStatus.SUCCEEDED
                     else f"Restock of {adjustment.seller_sku} failed: {adjustment.last_error[:200]}"),
            data={"adjustment": adjustment.pk, "status": adjustment.status, **payload},
            dedupe_key=f"inventory:{adjustment.pk}:{adjustment.status}",
        )
    return adjustment


def inventory_enqueue(*, write_back: WriteBack) -> None:
    """Queue the stock adjustment a write-back carries (it claims its own row)."""
    for pk in write_back.inventory_adjustments.values_list("id", flat=True):
        job_enqueue(INVENTORY_TASK, pk, f"tiktok-inventory-{pk}")


def inventory_due(*, now=None) -> int:
    """Enqueue the stock adjustments that are due (new, retry time come, or a dead
    worker's lease expired)."""
    now = now or timezone.now()
    ids = list(InventoryAdjustment.objects.filter(due_q(now, "write_back__"), write_back__isnull=False)
               .values_list("id", flat=True)[:500])
    for pk in ids:
        job_enqueue(INVENTORY_TASK, pk, f"tiktok-inventory-{pk}")
    return len(ids)


WRITE_BACK_RUNNERS = {
    **{action: ActionRunner(run=decision_run, failed=_decision_failed)
       for action in {*APPROVE_DECISIONS.values(), *REJECT_DECISIONS.values()}},
    WriteBackAction.UPDATE_INVENTORY: ActionRunner(enqueue=inventory_enqueue),
}


class TikTokMarketplace:
    """What the portal-side lifecycle asks of TikTok (``returnsync.registry.Marketplace``)."""

    REFUND_ONLY = frozenset({"REFUND", "REFUND_ONLY"})

    def needs_parcel(self, marketplace_return) -> bool:
        return marketplace_return.return_type not in self.REFUND_ONLY

    def refund_release(self, *, marketplace_return, actor=None) -> WriteBack:
        return writeback_queue_decision(marketplace_return=marketplace_return, decision="APPROVE_RECEIVED_PACKAGE",
                                        actor=actor)

    def refund_release_resend(self, *, marketplace_return, actor=None) -> WriteBack:
        sent = WriteBack.objects.filter(marketplace_return=marketplace_return,
                                        action=WriteBackAction.APPROVE_RECEIVED_PACKAGE).count()
        return writeback_queue_decision(marketplace_return=marketplace_return, decision="APPROVE_RECEIVED_PACKAGE",
                                        actor=actor, attempt=sent + 1)

    def refund_release_sent(self, marketplace_return) -> bool:
        return WriteBack.objects.filter(marketplace_return=marketplace_return,
                                        action__in=MONEY_RELEASING_ACTIONS).exists()

    def partial_refund_offer_refusal(self, *, marketplace_return, amount: Decimal) -> str:
        """Why TikTok would not take this offer now ("" when it may): the request must wait
        for the seller at an action that takes offers, and the amount sit inside the caps."""
        cfg = mapping.offer_config(marketplace_return.connection)
        if marketplace_return.next_action not in cfg["actions"]:
            return (f"TikTok takes a partial-refund offer only while it waits for the seller "
                    f"({', '.join(cfg['actions'])}); it waits for {marketplace_return.next_action or 'nothing'}.")
        if amount <= 0:
            return "Nothing remains to refund."
        price = marketplace_return.refund_subtotal or marketplace_return.refund_total or Decimal("0")
        return mapping.offer_cap_refusal(caps=cfg["caps"], amount=amount, price=price)

    def partial_refund_offer(self, *, marketplace_return, amount: Decimal, currency: str, actor=None) -> WriteBack:
        """Offer the buyer a partial refund (they keep the item and must accept it)."""
        return writeback_queue_decision(marketplace_return=marketplace_return, decision="OFFER_PARTIAL_REFUND",
                                        partial_refund={"amount": amount, "currency": currency}, actor=actor)

    def request_decisions(self, marketplace_return) -> dict[str, str]:
        """The decisions a person may take on the request now: {"approve": ..., "reject": ...}
        (empty when TikTok waits for no such answer)."""
        pair = mapping.REQUEST_DECISIONS.get(marketplace_return.next_action)
        return {"approve": pair[0], "reject": pair[1]} if pair else {}

    def reject_reasons(self, marketplace_return) -> list[tuple[str, str]]:
        from connectors.tiktok_shop.client import TikTokClient

        client = TikTokClient(marketplace_return.connection, max_attempts=2, timeout=(3.0, 10.0))
        return [(r["name"], str(r.get("text") or r["name"])) for r in client.reject_reasons(
            marketplace_return.return_id)]

    def request_decide(self, *, marketplace_return, decision: str, reject_reason: str = "", comment: str = "",
                       actor=None) -> WriteBack:
        return writeback_queue_decision(marketplace_return=marketplace_return, decision=decision,
                                        reject_reason=reject_reason, comment=comment, actor=actor)

    def seller_center_links(self, marketplace_return) -> dict[str, str]:
        return mapping.seller_center_links(marketplace_return.connection, order_id=marketplace_return.order_ref,
                                           return_id=marketplace_return.return_id)

    def stock_adjust(self, **kwargs) -> InventoryAdjustment:
        return inventory_adjustment_queue(**kwargs)

    def stock_adjustment_run(self, *, adjustment_id: int) -> InventoryAdjustment:
        return inventory_adjustment_apply(adjustment_id=adjustment_id)


MARKETPLACE = TikTokMarketplace()


def connection_authorize(*, connection, code: str) -> str:
    """Swap a seller's authorization code for tokens, store them encrypted, and discover the
    shop cipher. Raises ``TikTokApiError`` with TikTok's reason when TikTok refuses."""
    from connectors.tiktok_shop.client import TikTokClient

    client = TikTokClient(connection)
    client.exchange_auth_code(code.strip())
    shops = client.discover_shops()
    names = ", ".join(str(shop.get("name") or shop.get("id")) for shop in shops) or "no shop"
    return f"Authorized: tokens stored; shop {names}."


def connection_test(*, connection) -> str:
    """One signed, authenticated call (the authorized shops). Raises ``TikTokApiError`` with
    TikTok's reason when it fails."""
    from connectors.tiktok_shop.client import TikTokClient

    # A person is waiting on the answer: one retry at most, short timeouts (never a hang).
    shops = TikTokClient(connection, max_attempts=2, timeout=(3.0, 10.0)).discover_shops()
    names = ", ".join(str(s.get("name") or s.get("id")) for s in shops) or "no shops"
    return f"Connected: {len(shops)} authorized shop(s): {names}"
