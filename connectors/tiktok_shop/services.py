"""Outbound to TikTok Shop: seller decisions on returns and stock updates.

The services later issues call:

``writeback_queue_decision(marketplace_return=..., decision="APPROVE_RECEIVED_PACKAGE")``
    Queue a decision (approve/reject a refund, a return, a received package; offer a
    partial refund). The ``idempotency_key`` is deterministic
    (``tiktok:{connection}:{return_id}:{decision}``): queuing the same decision twice
    yields one ``WriteBack`` row, and every attempt sends the same key to TikTok, so TikTok
    applies it once. The run is enqueued after commit.

``writeback_run(write_back_id=...)``
    Run one write-back. A conditional UPDATE moves it to ``running`` (so two workers can
    never both run it); success, or TikTok's "already approved" (25020010) / "already
    received" (25020011), is ``succeeded``; a retryable failure is ``retrying`` with an
    exponential ``next_attempt_at``; a final error, or ``max_attempts`` used up, is
    ``dead``. Each outcome appends to the return's timeline.

``inventory_adjustment_queue(...)`` / ``inventory_adjustment_apply(adjustment_id=...)``
    Put restocked units back on sale. See ``inventory_adjustment_apply`` for why it reads
    the current quantity first instead of keeping a ledger.

``writebacks_enqueue_due()``
    Enqueue every write-back/adjustment whose retry time has come (run periodically).
"""
from __future__ import annotations

import logging
from decimal import Decimal

from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from connectors.jobs import RUNNING_LEASE, job_claim, job_enqueue, job_fail, write_back_create_once
from returnsync.choices import JobStatus, System, TimelineKind, WriteBackAction
from returnsync.models import InventoryAdjustment, MarketplaceReturn, WriteBack
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
# TikTok's answers meaning "this is already done": the write-back has succeeded.
DONE_CODES = frozenset({25020010, 25020011})
# Answers meaning "not yet" for a decision: TikTok learns of a delivery from the carrier,
# often after the warehouse has scanned the parcel, so "cannot approve receipt" now may
# succeed on a later attempt; the write-back retries on its backoff instead of dying.
NOT_YET_CODES = {"APPROVE_RECEIVED_PACKAGE": frozenset({25011013})}
RUN_TASK = "connectors.tiktok_shop.tasks.writeback_run_task"
INVENTORY_TASK = "connectors.tiktok_shop.tasks.inventory_adjustment_task"


def _client(connection):
    from connectors.tiktok_shop.client import TikTokClient

    return TikTokClient(connection)


def decision_idempotency_key(*, marketplace_return: MarketplaceReturn, decision: str) -> str:
    return f"tiktok:{marketplace_return.connection_id}:{marketplace_return.return_id}:{decision}"


def writeback_queue_decision(
    *, marketplace_return: MarketplaceReturn, decision: str, partial_refund: dict | None = None,
    reject_reason: str = "", comment: str = "", actor=None,
) -> WriteBack:
    """Queue a seller decision on a TikTok return (idempotent: one row per decision)."""
    decision = decision.strip().upper()
    if decision not in APPROVE_DECISIONS and decision not in REJECT_DECISIONS:
        raise ValueError(f"unknown TikTok decision {decision!r}")
    if decision == "OFFER_PARTIAL_REFUND":
        if not partial_refund or Decimal(str(partial_refund.get("amount", "0"))) <= 0:
            raise ValueError("OFFER_PARTIAL_REFUND needs partial_refund={'amount': ..., 'currency': ...}")
        partial_refund = {"amount": str(partial_refund["amount"]),
                          "currency": partial_refund.get("currency") or marketplace_return.currency}
    key = decision_idempotency_key(marketplace_return=marketplace_return, decision=decision)
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
        job_enqueue(RUN_TASK, write_back.pk, f"tiktok-writeback-{write_back.pk}")
    return write_back


def _record_outcome(write_back: WriteBack, summary: str) -> None:
    if write_back.marketplace_return_id is None:
        return
    timeline_record(
        system=System.TIKTOK_SHOP, kind=TimelineKind.WRITE_BACK,
        marketplace_return=write_back.marketplace_return, summary=summary,
        data={"write_back": write_back.pk, "status": write_back.status, "attempt": write_back.attempts,
              "api_code": write_back.last_api_code, "error": write_back.last_error[:300]},
        dedupe_key=f"writeback:{write_back.pk}:{write_back.attempts}:{write_back.status}",
    )


def writeback_run(*, write_back_id: int, client=None) -> WriteBack:
    """Run one TikTok decision write-back, exactly once however often it is called."""
    from connectors.tiktok_shop.client import TikTokApiError

    now = timezone.now()
    if not job_claim(WriteBack, write_back_id, now):
        return WriteBack.objects.get(pk=write_back_id)
    write_back = WriteBack.objects.select_related("connection", "marketplace_return").get(pk=write_back_id)
    if write_back.action == WriteBackAction.UPDATE_INVENTORY:
        raise ValueError("inventory write-backs run through inventory_adjustment_apply")
    payload = write_back.payload or {}
    client = client or _client(write_back.connection)
    try:
        if payload.get("kind") == "reject":
            client.reject_return(payload["return_id"], decision=payload["decision"],
                                 idempotency_key=write_back.idempotency_key,
                                 reject_reason=payload.get("reject_reason", ""), comment=payload.get("comment", ""))
        else:
            client.approve_return(payload["return_id"], decision=payload["decision"],
                                  idempotency_key=write_back.idempotency_key,
                                  partial_refund=payload.get("partial_refund"))
    except TikTokApiError as exc:
        if exc.code in DONE_CODES:
            write_back.status = JobStatus.SUCCEEDED
            write_back.succeeded_at = timezone.now()
            write_back.last_api_code = str(exc.code)
            write_back.last_error = ""
            summary = f"TikTok: {payload.get('decision')} already done ({exc.code})"
        else:
            if exc.code in NOT_YET_CODES.get(payload.get("decision"), ()):
                exc.retryable = True
            job_fail(write_back, exc, timezone.now())
            summary = f"TikTok rejected {payload.get('decision')}: {write_back.last_error[:200]}"
    except Exception as exc:
        job_fail(write_back, exc, timezone.now())
        summary = f"{payload.get('decision')} could not reach TikTok: {write_back.last_error[:200]}"
    else:
        write_back.status = JobStatus.SUCCEEDED
        write_back.succeeded_at = timezone.now()
        write_back.last_api_code = "0"
        write_back.last_error = ""
        summary = f"TikTok accepted {payload.get('decision')}"
    if write_back.status == JobStatus.RETRYING:
        summary += f" — retry {write_back.attempts + 1}/{write_back.max_attempts} at {write_back.next_attempt_at:%H:%M:%S}"
    elif write_back.status == JobStatus.DEAD:
        summary += " — gave up"
    write_back.save(update_fields=["status", "succeeded_at", "next_attempt_at", "last_error",
                                   "last_http_status", "last_api_code", "updated_at"])
    _record_outcome(write_back, summary)
    return write_back


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


def _warehouse_quantities(inventory: list[dict], sku_id: str) -> tuple[str, dict[str, int]]:
    for product in inventory:
        for sku in product.get("skus") or []:
            if str(sku.get("id")) == str(sku_id):
                return str(product.get("product_id") or ""), {
                    str(w.get("warehouse_id")): int(w.get("available_quantity") or 0)
                    for w in sku.get("warehouse_inventory") or []
                }
    return "", {}


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
    try:
        product_id, quantities = _warehouse_quantities(client.search_inventory(sku_ids=[adjustment.sku_id]),
                                                       adjustment.sku_id)
        product_id = product_id or adjustment.product_id
        current = quantities.get(adjustment.warehouse_id, 0)
        done = False
        if "target" in payload:  # an earlier attempt may have been applied
            if current == payload["target"]:
                done = True
            elif current != payload["before"]:
                raise RuntimeError(
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
        if isinstance(exc, RuntimeError):
            exc.retryable = False
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


def writeback_enqueue(*, write_back: WriteBack) -> None:
    """Queue one run of a write-back (after commit): a decision, or the stock update it carries."""
    if write_back.action == WriteBackAction.UPDATE_INVENTORY:
        for pk in write_back.inventory_adjustments.values_list("id", flat=True):
            job_enqueue(INVENTORY_TASK, pk, f"tiktok-inventory-{pk}")
    else:
        job_enqueue(RUN_TASK, write_back.pk, f"tiktok-writeback-{write_back.pk}")


def writebacks_enqueue_due(*, now=None) -> int:
    """Enqueue write-backs and adjustments that are due (new, retry time come, or a dead
    worker's lease expired). Safe to run often: the run itself claims atomically."""
    now = now or timezone.now()
    due = (Q(status__in=[JobStatus.QUEUED, JobStatus.RETRYING])
           & (Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))) | Q(
        status=JobStatus.RUNNING, updated_at__lt=now - RUNNING_LEASE)
    count = 0
    for pk in WriteBack.objects.filter(due, connection__kind=System.TIKTOK_SHOP).exclude(
        action=WriteBackAction.UPDATE_INVENTORY
    ).values_list("id", flat=True)[:500]:
        job_enqueue(RUN_TASK, pk, f"tiktok-writeback-{pk}")
        count += 1
    adj_due = Q(status__in=[JobStatus.QUEUED]) | Q(
        status=JobStatus.RETRYING, write_back__next_attempt_at__lte=now) | Q(
        status=JobStatus.RUNNING, updated_at__lt=now - RUNNING_LEASE)
    for pk in InventoryAdjustment.objects.filter(adj_due, write_back__isnull=False).values_list("id", flat=True)[:500]:
        job_enqueue(INVENTORY_TASK, pk, f"tiktok-inventory-{pk}")
        count += 1
    return count


def connection_authorize(*, connection, auth_code: str) -> list[dict]:
    """Swap a seller's authorization code for tokens, store them encrypted, and discover the
    shop cipher. Raises ``TikTokApiError`` with TikTok's reason when TikTok refuses."""
    from connectors.tiktok_shop.client import TikTokClient

    client = TikTokClient(connection)
    client.exchange_auth_code(auth_code.strip())
    return client.discover_shops()


def connection_test(*, connection) -> str:
    """One signed, authenticated call (the authorized shops). Raises ``TikTokApiError`` with
    TikTok's reason when it fails."""
    from connectors.tiktok_shop.client import TikTokClient

    # A person is waiting on the answer: one retry at most, short timeouts (never a hang).
    shops = TikTokClient(connection, max_attempts=2, timeout=(3.0, 10.0)).discover_shops()
    names = ", ".join(str(s.get("name") or s.get("id")) for s in shops) or "no shops"
    return f"Connected: {len(shops)} authorized shop(s): {names}"
