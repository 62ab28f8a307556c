"""Cross-sandbox fault injector: one function per exception type (the twelve failure modes).

Sandbox-only code: it drives the TikTok Shop and ZigZag sandboxes' Python APIs and is
never imported by a production path. Each ``inject_<code>`` writes, **in the sandboxes
only**, a return whose ordinary processing by our connectors (TikTok and ZigZag webhooks,
the mirror, the received-package and restock write-backs, all over HTTP) ends in that
failure. Nothing here writes our canonical tables. Time thresholds are met by
backdating the sandboxes' own history (TikTok ``create_time``/``update_time``, ZigZag
``at=``), never by running detection in the future.

    from connectors import sandbox_faults
    scenario = sandbox_faults.Scenario.for_connections(tiktok=tiktok_conn, zigzag=zigzag_conn, seed=1)
    manifest = sandbox_faults.inject(scenario, modes=["status_drift"], count=2)
    manifest = sandbox_faults.inject_mix(scenario, count=1, clean=4)   # every mode + clean returns

Ids derive from (seed, mode, n): injecting the same again finds what is there
(``Injected.created`` False) instead of piling up new faults.

| mode | what the sandboxes are made to do |
|---|---|
| portal_bypass | a TikTok return already delivered to the warehouse on TikTok's own label before we ever saw it: past the mirror's stages, so no portal record (older than the grace) |
| orphan_portal_return | a ZigZag return whose order number TikTok does not know, opened 3 h ago |
| status_drift | ZigZag scanned and graded the parcel sellable 6 h ago, so the refund gate releases it; TikTok answers our "received package" call with success but records nothing (fault ``ignore_decisions``) |
| tracking_mismatch | TikTok carries its own return tracking number, ZigZag the label the mirror created |
| refund_mismatch | ZigZag authorises a refund 5.00 below the item's price; TikTok's figure includes tax |
| partial_refund | one of two items never arrives (short scan), or the only item is graded damaged |
| bundle_component_unmapped | the order sold an (unmapped) bundle SKU; ZigZag receives one component |
| refund_lag | a ZigZag return for a real TikTok order with no TikTok return, received 4 days ago |
| restock_latency | graded sellable 6 h ago; TikTok's inventory API answers 503 for that SKU (fault ``unavailable_skus``) |
| refund_outside_portal | TikTok refunds while the ZigZag return is still waiting for the parcel |
| approval_deadline | a refund request left unanswered for 40 h (TikTok's deadline is 48 h) |
| release_deadline | a parcel delivered on TikTok 40 h ago and scanned at ZigZag, never inspected: TikTok approves the full refund by itself in 8 h |
| sync_failure | TikTok refuses the "received package" call (it never saw the parcel ship): dead write-back; or ZigZag sends a webhook naming no return: dead letter |

Clean returns (``inject_clean``) go through the same sandboxes without a fault: labelled,
in transit, received + graded + restocked (recent), and the same completed 4 days ago.
"""
from __future__ import annotations

import hashlib
import random
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timedelta

from django.utils import timezone

from connectors.tiktok_shop.sandbox import api as tiktok_api
from connectors.tiktok_shop.sandbox import state as sm
from connectors.tiktok_shop.sandbox.models import SandboxOrder
from connectors.tiktok_shop.sandbox.scenario import FAULT_SCENARIO_REASON
from connectors.zigzag.sandbox import api as zigzag_api
from connectors.zigzag.sandbox.models import ZigZagReturn, ZigZagWebhook

MINUTE = timedelta(minutes=1)
HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
LOCATION = "ZZ-LDN-1"


@dataclass
class Injected:
    """One injected fault (or clean return) and where to find it."""

    mode: str                    # exception type code, or "clean"
    n: int
    order_id: str = ""           # TikTok order id
    return_id: str = ""          # TikTok return id
    portal_reference: str = ""   # the ZigZag return's reference (== return_id when linked)
    sku: str = ""                # the faulty line's SKU (line-level modes)
    event_id: str = ""           # the ZigZag webhook (dead letter)
    expect: str = ""             # the subject the exception must be about (see ``subject``)
    note: str = ""
    created: bool = True         # False: it was already there (idempotent re-run)

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass
class Scenario:
    """Both sandbox accounts and the anchor time of one injection run."""

    tiktok: object               # our TikTok Connection (sandbox)
    zigzag: object               # our ZigZag Connection (sandbox)
    seed: int = 1
    now: datetime = field(default_factory=timezone.now)

    @classmethod
    def for_connections(cls, *, tiktok, zigzag, seed: int = 1, now: datetime | None = None) -> Scenario:
        return cls(tiktok=tiktok, zigzag=zigzag, seed=seed, now=now or timezone.now())

    @property
    def app(self):
        return tiktok_api.get_app(self.tiktok)

    @property
    def account(self):
        return zigzag_api.get_account(self.zigzag)

    def ts(self, ago: timedelta) -> int:
        return int((self.now - ago).timestamp())

    def at(self, ago: timedelta) -> datetime:
        return self.now - ago

    def key(self, mode: str, n: int, *parts) -> tuple:
        return ("fault", self.seed, mode, n, *parts)


# --- building blocks ----------------------------------------------------------------------


def _sku(sc: Scenario, mode: str, n: int, index: int = 0, *, price: str = "24.00", name: str = "") -> dict:
    tag = f"{sc.seed}{n}{index}"
    return {
        "sku_id": tiktok_api.derived_id("17", *sc.key(mode, n, "sku", index), digits=19),
        "product_id": tiktok_api.derived_id("17", *sc.key(mode, n, "product", index), digits=19),
        "seller_sku": f"FLT-{mode.upper().replace('_', '')[:10]}-{tag}",
        "product_name": name or f"Fault scenario item {mode} {n}.{index}", "sku_name": "Default",
        "sale_price": price, "quantity": 1,
    }


def _order_id(sc: Scenario, mode: str, n: int) -> str:
    return tiktok_api.derived_id("57", *sc.key(mode, n, "order"), digits=18)


def _return_id(sc: Scenario, mode: str, n: int) -> str:
    return tiktok_api.derived_id("40", *sc.key(mode, n, "return"), digits=18)


def _exists(sc: Scenario, order_id: str) -> bool:
    return SandboxOrder.objects.filter(shop=tiktok_api.get_shop(sc.app), order_id=order_id).exists()


def _order(sc: Scenario, mode: str, n: int, lines: list[dict], *, ago: timedelta = 3 * DAY) -> dict:
    return tiktok_api.create_order(sc.app, lines=lines, order_id=_order_id(sc, mode, n), create_time=sc.ts(ago),
                                   stock=10, postal_code="94107")


def _tiktok_return(sc: Scenario, mode: str, n: int, order: dict, *, ago: timedelta, approved: bool = True,
                   return_type: str = sm.RETURN_AND_REFUND, notify: bool = True) -> dict:
    """A buyer's request ``ago``, approved a minute later (the label stage) unless ``approved`` is False."""
    return_id = _return_id(sc, mode, n)
    data = tiktok_api.create_return(sc.app, order_id=order["id"], return_id=return_id, return_type=return_type,
                                    create_time=sc.ts(ago), notify=notify and not approved,
                                    return_reason_text=f"{FAULT_SCENARIO_REASON} ({mode})")
    if approved:
        data = tiktok_api.advance_return(sc.app, return_id, to_status=sm.AWAITING_BUYER_SHIP,
                                         update_time=sc.ts(ago) + 60, notify=notify)
    return data


def _delivered(sc: Scenario, return_id: str, *, ago: timedelta, tracking: str = "") -> dict:
    """TikTok sees the parcel delivered to the seller (stage received on our side)."""
    return tiktok_api.advance_return(sc.app, return_id, to_status=sm.BUYER_SHIPPED_ITEM,
                                     next_actions=[sm.RESPOND_RECEIVE], update_time=sc.ts(ago),
                                     tracking_number=tracking)


def _zigzag_items(order: dict, tiktok_return: dict, *, sku_for: dict | None = None) -> list[dict]:
    """What our mirror would send: one item per returned line, priced at the line's price."""
    prices = {line["id"]: line["sale_price"] for line in order["line_items"]}
    items = []
    for line in tiktok_return["return_line_items"]:
        sku = (sku_for or {}).get(line["seller_sku"], line["seller_sku"])
        items.append({"item_reference": line["return_line_item_id"], "sku": sku, "name": line["product_name"],
                      "quantity": 1, "unit_price": prices.get(line["order_line_item_id"])})
    return items


def _zigzag_return(sc: Scenario, mode: str, *, reference: str, order_reference: str, items: list[dict],
                   ago: timedelta) -> ZigZagReturn:
    """The ZigZag return as ZigZag holds it (label created ``ago``); our mirror finds it
    by its reference (409 + the existing return) or its webhooks bring it."""
    ret, _ = zigzag_api.create_return(sc.account, reference=reference, order_reference=order_reference,
                                      items=items, currency="USD", customer={"postal_code": "94107", "fault": mode},
                                      at=sc.at(ago))
    return ret


def _linked(sc: Scenario, mode: str, n: int, lines: list[dict], *, ago: timedelta, sku_for: dict | None = None,
            approved: bool = True) -> tuple[dict, dict, ZigZagReturn]:
    """Order, TikTok return approved ``ago`` and its ZigZag return (label) five minutes later."""
    order = _order(sc, mode, n, lines, ago=ago + 2 * DAY)
    tiktok_return = _tiktok_return(sc, mode, n, order, ago=ago, approved=approved)
    zz = _zigzag_return(sc, mode, reference=tiktok_return["return_id"], order_reference=order["id"],
                        items=_zigzag_items(order, tiktok_return, sku_for=sku_for), ago=ago - 5 * MINUTE)
    return order, tiktok_return, zz


def _received(sc: Scenario, zz: ZigZagReturn, return_id: str, *, ago: timedelta,
              received: dict | None = None, tiktok_sees_it: bool = True) -> None:
    """Shipped (an hour before), delivered on TikTok (same label) and scanned at ZigZag ``ago``."""
    zigzag_api.ship(sc.account, zz.return_id, at=sc.at(ago + HOUR))
    if tiktok_sees_it:
        _delivered(sc, return_id, ago=ago, tracking=zz.tracking_number)
    zigzag_api.scan(sc.account, zz.return_id, received=received, location=LOCATION, at=sc.at(ago))


def _entry(mode: str, n: int, *, order_id: str = "", return_id: str = "", portal_reference: str = "",
           sku: str = "", event_id: str = "", expect: str, note: str, created: bool = True) -> Injected:
    return Injected(mode=mode, n=n, order_id=order_id, return_id=return_id, portal_reference=portal_reference,
                    sku=sku, event_id=event_id, expect=expect, note=note, created=created)


def _tiktok_entry(sc: Scenario, mode: str, n: int, *, expect: str, note: str, portal: bool = True,
                  sku: str = "") -> Injected:
    """The manifest entry of a fault built on a TikTok order and return; ``created`` is False
    when that order is already in the sandbox (the caller then leaves it as it is)."""
    order_id, return_id = _order_id(sc, mode, n), _return_id(sc, mode, n)
    return _entry(mode, n, order_id=order_id, return_id=return_id, portal_reference=return_id if portal else "",
                  sku=sku, expect=expect, note=note, created=not _exists(sc, order_id))


# --- the twelve modes ----------------------------------------------------------------------


def inject_portal_bypass(sc: Scenario, n: int) -> Injected:
    mode = "portal_bypass"
    entry = _tiktok_entry(
        sc, mode, n, expect="marketplace_return", portal=False,
        note="delivered on TikTok's own label 1 h ago, never through the portal")
    if not entry.created:
        return entry
    return_id = entry.return_id
    order = _order(sc, mode, n, [_sku(sc, mode, n)])
    # Only the final state is announced: by the time we hear of it, it is past the mirror's stages.
    _tiktok_return(sc, mode, n, order, ago=3 * HOUR, notify=False)
    _delivered(sc, return_id, ago=HOUR)
    return entry


def inject_orphan_portal_return(sc: Scenario, n: int) -> Injected:
    mode = "orphan_portal_return"
    reference = tiktok_api.derived_id("ZW", *sc.key(mode, n, "reference"), digits=12)
    unknown_order = tiktok_api.derived_id("57", *sc.key(mode, n, "typo"), digits=18)
    entry = _entry(mode, n, order_id=unknown_order, portal_reference=reference, expect="portal_return",
                   note="ZigZag return for an order id TikTok does not know (3 h old)")
    if ZigZagReturn.objects.filter(account=sc.account, reference=reference).exists():
        entry.created = False
        return entry
    item = _sku(sc, mode, n)
    zigzag_api.create_return(sc.account, reference=reference, order_reference=unknown_order, currency="USD",
                             items=[{"sku": item["seller_sku"], "name": item["product_name"], "quantity": 1,
                                     "unit_price": item["sale_price"]}],
                             customer={"postal_code": "94107", "fault": mode}, at=sc.at(3 * HOUR))
    return entry


def inject_status_drift(sc: Scenario, n: int) -> Injected:
    mode = "status_drift"
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return",
        note="scanned and graded sellable 6 h ago (the refund gate releases it); TikTok ignores the received-package "
             "call")
    if not entry.created:
        return entry
    return_id = entry.return_id
    tiktok_api.add_faults(sc.app, ignore_decisions=[return_id])
    item = _sku(sc, mode, n)
    _, _, zz = _linked(sc, mode, n, [item], ago=2 * DAY)
    _received(sc, zz, return_id, ago=6 * HOUR)
    zigzag_api.grade(sc.account, zz.return_id, grades={item["seller_sku"]: "SELLABLE"}, at=sc.at(6 * HOUR - MINUTE))
    return entry


def inject_tracking_mismatch(sc: Scenario, n: int) -> Injected:
    mode = "tracking_mismatch"
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return", note="TikTok's return tracking ≠ the ZigZag label the mirror created")
    if not entry.created:
        return entry
    return_id = entry.return_id
    order = _order(sc, mode, n, [_sku(sc, mode, n)], ago=2 * DAY)
    _tiktok_return(sc, mode, n, order, ago=DAY)
    # The buyer ships with TikTok's own label (TikTok makes up its tracking number).
    tiktok_api.advance_return(sc.app, return_id, to_status=sm.BUYER_SHIPPED_ITEM, update_time=sc.ts(2 * HOUR))
    return entry


def inject_refund_mismatch(sc: Scenario, n: int) -> Injected:
    mode = "refund_mismatch"
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return",
        note="ZigZag authorises 5.00 less than the price; TikTok refunds price + tax")
    if not entry.created:
        return entry
    return_id = entry.return_id
    item = _sku(sc, mode, n, price="40.00")
    _, _, zz = _linked(sc, mode, n, [item], ago=DAY)
    _received(sc, zz, return_id, ago=HOUR)
    zigzag_api.grade(sc.account, zz.return_id, grades={item["seller_sku"]: "SELLABLE"}, at=sc.at(50 * MINUTE))
    zigzag_api.authorise_refund(sc.account, zz.return_id, amounts={item["seller_sku"]: "35.00"},
                                at=sc.at(45 * MINUTE))
    return entry


def inject_partial_refund(sc: Scenario, n: int) -> Injected:
    mode = "partial_refund"
    short = n % 2 == 1
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return",
        note="one of two items missing from the parcel" if short else "the item failed grading (damaged)")
    if not entry.created:
        return entry
    return_id = entry.return_id
    lines = [_sku(sc, mode, n, 0), _sku(sc, mode, n, 1, price="16.00")] if short else [_sku(sc, mode, n)]
    _, _, zz = _linked(sc, mode, n, lines, ago=DAY)
    if short:
        _received(sc, zz, return_id, ago=HOUR, received={lines[0]["seller_sku"]: 1})
    else:
        _received(sc, zz, return_id, ago=HOUR)
        zigzag_api.grade(sc.account, zz.return_id, grades={lines[0]["seller_sku"]: "DAMAGED"},
                         at=sc.at(50 * MINUTE))
    return entry


def inject_bundle_component_unmapped(sc: Scenario, n: int) -> Injected:
    mode = "bundle_component_unmapped"
    parts = [_sku(sc, mode, n, 1, price="15.00"), _sku(sc, mode, n, 2, price="15.00")]
    bundle = {**_sku(sc, mode, n, 0, price="27.00", name=f"Fault scenario bundle {n}"),
              "combined_listing_skus": [{"sku_id": p["sku_id"], "sku_count": 1, "product_id": p["product_id"],
                                         "seller_sku": p["seller_sku"]} for p in parts]}
    bundle["seller_sku"] = bundle["seller_sku"].replace("FLT-", "FLT-BUNDLE-")
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return_line", sku=parts[0]["seller_sku"],
        note=f"order sold bundle {bundle['seller_sku']} (no mapping); ZigZag has component {parts[0]['seller_sku']}")
    if not entry.created:
        return entry
    _linked(sc, mode, n, [bundle], ago=DAY, sku_for={bundle["seller_sku"]: parts[0]["seller_sku"]})
    return entry


def inject_refund_lag(sc: Scenario, n: int) -> Injected:
    mode = "refund_lag"
    order_id = _order_id(sc, mode, n)
    reference = tiktok_api.derived_id("ZW", *sc.key(mode, n, "reference"), digits=12)
    entry = _entry(mode, n, order_id=order_id, portal_reference=reference, expect="portal_return",
                   note="returned through ZigZag only (no TikTok return), received 4 days ago, never refunded")
    if _exists(sc, order_id):
        entry.created = False
        return entry
    item = _sku(sc, mode, n)
    order = _order(sc, mode, n, [item], ago=8 * DAY)
    zz = _zigzag_return(sc, mode, reference=reference, order_reference=order["id"], ago=6 * DAY, items=[
        {"sku": item["seller_sku"], "name": item["product_name"], "quantity": 1, "unit_price": item["sale_price"]}])
    zigzag_api.ship(sc.account, zz.return_id, at=sc.at(5 * DAY))
    zigzag_api.scan(sc.account, zz.return_id, location=LOCATION, at=sc.at(4 * DAY))
    return entry


def inject_restock_latency(sc: Scenario, n: int) -> Injected:
    mode = "restock_latency"
    item = _sku(sc, mode, n)
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return_line", sku=item["seller_sku"],
        note="graded sellable 6 h ago; TikTok's inventory API is unavailable for the SKU")
    if not entry.created:
        return entry
    return_id = entry.return_id
    tiktok_api.add_faults(sc.app, unavailable_skus=[item["sku_id"]])
    _, _, zz = _linked(sc, mode, n, [item], ago=2 * DAY)
    _received(sc, zz, return_id, ago=7 * HOUR)
    zigzag_api.grade(sc.account, zz.return_id, grades={item["seller_sku"]: "SELLABLE"}, at=sc.at(6 * HOUR))
    return entry


def inject_refund_outside_portal(sc: Scenario, n: int) -> Injected:
    mode = "refund_outside_portal"
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return",
        note="TikTok refunded 2 h ago; the ZigZag return still waits for the parcel")
    if not entry.created:
        return entry
    return_id = entry.return_id
    _linked(sc, mode, n, [_sku(sc, mode, n)], ago=DAY)
    tiktok_api.advance_return(sc.app, return_id, to_status=sm.SUCCESS, update_time=sc.ts(2 * HOUR),
                              note="Refunded by TikTok customer service")
    return entry


def inject_approval_deadline(sc: Scenario, n: int) -> Injected:
    mode = "approval_deadline"
    entry = _tiktok_entry(
        sc, mode, n, expect="marketplace_return", portal=False,
        note="refund request unanswered for 40 h: TikTok approves it by itself in 8 h")
    if not entry.created:
        return entry
    order = _order(sc, mode, n, [_sku(sc, mode, n)])
    _tiktok_return(sc, mode, n, order, ago=40 * HOUR, approved=False, return_type=sm.REFUND)
    return entry


def inject_release_deadline(sc: Scenario, n: int) -> Injected:
    mode = "release_deadline"
    entry = _tiktok_entry(
        sc, mode, n, expect="portal_return",
        note="delivered on TikTok 40 h ago and scanned, never inspected: TikTok refunds in full by itself in 8 h")
    if not entry.created:
        return entry
    _, _, zz = _linked(sc, mode, n, [_sku(sc, mode, n)], ago=3 * DAY)
    _received(sc, zz, entry.return_id, ago=40 * HOUR)
    return entry


def inject_sync_failure(sc: Scenario, n: int) -> Injected:
    """A ZigZag webhook we cannot process: a dead letter. (A write-back that fails for good
    is raised by the rule owning its consequence: portal_bypass, status_drift,
    restock_latency; so the plumbing failures left to this type are undeliverable events.)"""
    mode = "sync_failure"
    event_id = f"evt_fault_{sc.seed}_{n}"
    if n % 2 == 0:
        body, note = {"event": "return.received"}, "ZigZag webhook naming no return (dead letter)"
    else:
        body, note = ({"event": "return.updated", "return": "ZZ-?"},
                      "ZigZag webhook whose return is not an object (dead letter)")
    entry = _entry(mode, n, event_id=event_id, expect="inbound_event", note=note)
    if ZigZagWebhook.objects.filter(event_id=event_id).exists():
        entry.created = False
        return entry
    zigzag_api.queue_raw_webhook(sc.account, {"event_id": event_id, **body, "occurred_at": sc.at(HOUR).isoformat()},
                                 event=body["event"])
    return entry


INJECTORS: dict[str, Callable[[Scenario, int], Injected]] = {
    "portal_bypass": inject_portal_bypass,
    "orphan_portal_return": inject_orphan_portal_return,
    "status_drift": inject_status_drift,
    "tracking_mismatch": inject_tracking_mismatch,
    "refund_mismatch": inject_refund_mismatch,
    "partial_refund": inject_partial_refund,
    "bundle_component_unmapped": inject_bundle_component_unmapped,
    "refund_lag": inject_refund_lag,
    "restock_latency": inject_restock_latency,
    "refund_outside_portal": inject_refund_outside_portal,
    "approval_deadline": inject_approval_deadline,
    "release_deadline": inject_release_deadline,
    "sync_failure": inject_sync_failure,
}
MODES = tuple(INJECTORS)
CLEAN_KINDS = ("labelled", "in_transit", "restocked", "completed_days_ago", "refund_request", "return_request")


def inject_clean(sc: Scenario, n: int) -> Injected:
    """A return that goes through both sandboxes without a fault (kind by ``n``)."""
    mode = "clean"
    kind = CLEAN_KINDS[n % len(CLEAN_KINDS)]
    order_id, return_id = _order_id(sc, mode, n), _return_id(sc, mode, n)
    entry = _entry(mode, n, order_id=order_id, return_id=return_id, expect="", note=kind)
    if _exists(sc, order_id):
        entry.created = False
        return entry
    item = _sku(sc, mode, n)
    if kind == "labelled":  # the mirror creates the ZigZag return itself
        order = _order(sc, mode, n, [item])
        _tiktok_return(sc, mode, n, order, ago=10 * MINUTE)
    elif kind in ("refund_request", "return_request"):  # a request from an hour ago: 47 h left to answer
        order = _order(sc, mode, n, [item])
        _tiktok_return(sc, mode, n, order, ago=HOUR, approved=False,
                       return_type=sm.REFUND if kind == "refund_request" else sm.RETURN_AND_REFUND)
    elif kind == "in_transit":
        _, _, zz = _linked(sc, mode, n, [item], ago=DAY)
        zigzag_api.ship(sc.account, zz.return_id, at=sc.at(3 * HOUR))
        tiktok_api.advance_return(sc.app, return_id, to_status=sm.BUYER_SHIPPED_ITEM, update_time=sc.ts(3 * HOUR),
                                  tracking_number=zz.tracking_number)
    else:
        ago = HOUR if kind == "restocked" else 5 * DAY
        _, _, zz = _linked(sc, mode, n, [item], ago=ago + DAY)
        _received(sc, zz, return_id, ago=ago)
        zigzag_api.grade(sc.account, zz.return_id, grades={item["seller_sku"]: "SELLABLE"},
                         at=sc.at(ago - 10 * MINUTE))
        entry.portal_reference = return_id
    return entry


def inject(sc: Scenario, *, modes: list[str] | tuple[str, ...] = MODES, count: int = 1,
           start: int = 1) -> list[Injected]:
    """Inject ``count`` faults of each of ``modes`` (numbered from ``start``)."""
    unknown = [m for m in modes if m not in INJECTORS]
    if unknown:
        raise ValueError(f"unknown failure mode(s): {', '.join(unknown)}; known: {', '.join(MODES)}")
    return [INJECTORS[mode](sc, n) for n in range(start, start + count) for mode in modes]


def inject_mix(sc: Scenario, *, count: int = 1, clean: int = 5, rng: random.Random | None = None) -> list[Injected]:
    """Every failure mode ``count`` times plus ``clean`` returns without a fault."""
    manifest = inject(sc, modes=MODES, count=count)
    manifest += [inject_clean(sc, n) for n in range(clean)]
    if rng is not None:
        rng.shuffle(manifest)
    return manifest


# --- where each injected fault must show up (for the proof and the command's check) -----------


def subject(entry: Injected, *, zigzag) -> tuple[str, int] | None:
    """(subject kind, id) of the exception ``entry`` must raise, in our tables now; None when
    our side has not (yet) got the subject, or for a clean return."""
    from returnsync.choices import WriteBackAction
    from returnsync.models import (
        InboundEvent,
        MarketplaceReturn,
        PortalReturn,
        PortalReturnLine,
        WriteBack,
    )

    if entry.expect == "marketplace_return":
        pk = MarketplaceReturn.objects.filter(return_id=entry.return_id).values_list("pk", flat=True).first()
    elif entry.expect == "portal_return":
        pk = (PortalReturn.objects.filter(connection=zigzag, return_ref=entry.portal_reference)
              .values_list("pk", flat=True).first())
    elif entry.expect == "portal_return_line":
        pk = (PortalReturnLine.objects.filter(portal_return__connection=zigzag,
                                              portal_return__return_ref=entry.portal_reference, sku=entry.sku)
              .values_list("pk", flat=True).first())
    elif entry.expect == "write_back":
        pk = (WriteBack.objects.filter(marketplace_return__return_id=entry.return_id,
                                       action=WriteBackAction.APPROVE_RECEIVED_PACKAGE)
              .values_list("pk", flat=True).first())
    elif entry.expect == "inbound_event":
        # The receiver keys a malformed event by the digest of its raw body.
        body = ZigZagWebhook.objects.filter(event_id=entry.event_id).values_list("body", flat=True).first() or ""
        digest = hashlib.sha256(body.encode()).hexdigest()
        pk = (InboundEvent.objects.filter(connection=zigzag, dedupe_key=f"{zigzag.pk}:malformed:{digest}")
              .values_list("pk", flat=True).first())
    else:
        return None
    return None if pk is None else (entry.expect, pk)

