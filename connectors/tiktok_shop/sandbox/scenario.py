"""Scenario generator (deterministic seeding) and traffic simulation for the sandbox.

``seed_scenario(app, orders=N, seed=S, now=T)`` builds the same catalogue, orders and
returns for the same (S, T): every id, price, postal code, status and time comes from
``random.Random(S)`` and the anchor time ``T``. Returns cover every TikTok status;
requests still waiting for the seller are recent enough that their deadlines lie ahead
(a few close to expiry). ``traffic_tick(app)`` creates a few returns and moves others
along as buyers, carriers and the platform would.
"""
from __future__ import annotations

import random
from decimal import Decimal

from connectors.tiktok_shop.sandbox import api
from connectors.tiktok_shop.sandbox import state as sm
from connectors.tiktok_shop.sandbox.models import SandboxOrder, SandboxReturn

HOUR, DAY = 3600, 86400
PRODUCT_NAMES = [
    "Glow Serum 30ml", "Hydra Cream", "Matte Lip Kit", "Bamboo Brush Set", "Silk Pillowcase",
    "LED Ring Light", "Phone Tripod", "Yoga Leggings", "Running Socks 3-pack", "Thermal Mug",
    "Wireless Earbuds", "Phone Case", "Hair Clips 6-pack", "Scrunchies", "Face Roller",
]
SKU_NAMES = ["Black", "White", "Rose", "Blue", "S", "M", "L"]
POSTAL_CODES = ["10001", "94107", "60614", "73301", "98101", "33101", "02108", "80202", "30301", "85001",
                "19103", "48201", "55401", "97201", "89101", "20001", "37201", "28202", "63101", "84101"]
REASONS = [
    ("ecom_order_delivered_refund_and_return_reason_not_as_described", "Item not as described"),
    ("ecom_order_delivered_refund_and_return_reason_wrong_item", "Wrong item was sent"),
    ("ecom_order_delivered_refund_and_return_reason_damaged", "Item arrived damaged"),
    ("ecom_order_delivered_refund_and_return_reason_no_longer_needed", "No longer needed"),
]
# The reason text of the fault scenario's returns (connectors.sandbox_faults): traffic leaves them alone.
FAULT_SCENARIO_REASON = "Fault scenario"
# Statuses whose request still waits for the seller: keep them recent.
ACTIONABLE = {sm.PENDING, sm.REPLACEMENT_PENDING, sm.BUYER_SHIPPED_ITEM, sm.AWAITING_BUYER_SHIP}


def build_catalog(shop_key: str, rng: random.Random) -> tuple[list[dict], list[dict]]:
    """Products with 1-3 SKUs each, and a few virtual bundles of 2-3 of those SKUs."""
    skus = []
    for p, name in enumerate(PRODUCT_NAMES):
        product_id = api.derived_id("17", shop_key, "product", p, digits=19)
        price = Decimal(rng.choice([799, 999, 1299, 1499, 1999, 2499, 3499, 4999])) / 100
        for s in range(rng.randint(1, 3)):
            sku_id = api.derived_id("17", shop_key, "sku", p, s, digits=19)
            skus.append({"sku_id": sku_id, "product_id": product_id, "product_name": name,
                         "sku_name": SKU_NAMES[(p + s) % len(SKU_NAMES)], "seller_sku": f"RS-{p:02d}-{s}",
                         "sale_price": str(price)})
    bundles = []
    for b in range(3):
        components = rng.sample(skus, rng.randint(2, 3))
        price = sum(Decimal(c["sale_price"]) for c in components) * Decimal("0.85")
        sku_id = api.derived_id("17", shop_key, "bundle", b, digits=19)
        bundles.append({
            "sku_id": sku_id, "product_id": api.derived_id("17", shop_key, "bundle-product", b, digits=19),
            "product_name": f"Bundle {b + 1}: " + " + ".join(c["product_name"] for c in components),
            "sku_name": "Bundle", "seller_sku": f"RS-BUNDLE-{b}", "sale_price": api.money(price),
            "combined_listing_skus": [{"sku_id": c["sku_id"], "sku_count": 1, "product_id": c["product_id"],
                                       "seller_sku": c["seller_sku"]} for c in components],
        })
    return skus, bundles


def _order_lines(rng: random.Random, skus, bundles) -> list[dict]:
    lines = []
    if rng.random() < 0.2:
        lines.append({**rng.choice(bundles), "quantity": 1})
    for sku in rng.sample(skus, rng.randint(0 if lines else 1, 2)):
        lines.append({**sku, "quantity": rng.choice([1, 1, 1, 2])})
    return lines


def _return_type_for(status: str, rng: random.Random) -> str:
    if status.startswith("REPLACEMENT_REQUEST"):
        return sm.REPLACEMENT
    if status in (sm.PENDING, sm.REJECTED, sm.SUCCESS, sm.COMPLETE, sm.CANCELLED, sm.AWAITING_BUYER_RESPONSE):
        return sm.REFUND if rng.random() < 0.3 else sm.RETURN_AND_REFUND
    return sm.RETURN_AND_REFUND


def seed_scenario(app, *, orders: int, seed: int, now: int | None = None, notify: bool = False) -> dict:
    """Create ``orders`` orders (about 60% with a return) deterministically; idempotent."""
    app = api.get_app(app)
    shop = api.get_shop(app)
    now = int(now if now is not None else api.now_ts())
    rng = random.Random(seed)
    skus, bundles = build_catalog(f"seed{seed}", rng)
    counts = {"orders": 0, "returns": 0}
    status_cycle = list(sm.ALL_STATUSES)
    returns_made = 0
    for i in range(orders):
        order_rng = random.Random(f"{seed}|order|{i}")
        order_id = api.random_id("57", order_rng)
        wants_return = order_rng.random() < 0.6
        target = status_cycle[returns_made % len(status_cycle)] if wants_return else None
        if target in ACTIONABLE:
            created = now - order_rng.randint(4 * DAY, 12 * DAY)
        else:
            created = now - order_rng.randint(5 * DAY, 40 * DAY)
        order_status = "DELIVERED" if wants_return else order_rng.choice(
            ["AWAITING_SHIPMENT", "IN_TRANSIT", "DELIVERED", "DELIVERED", "COMPLETED", "CANCELLED", "UNPAID"])
        lines, postal_code = _order_lines(order_rng, skus, bundles), order_rng.choice(POSTAL_CODES)
        if not SandboxOrder.objects.filter(shop=shop, order_id=order_id).exists():
            api.create_order(app, lines=lines, postal_code=postal_code, order_id=order_id, status=order_status,
                             create_time=created, buyer_name=f"Buyer {i + 1}", notify=notify, stock=40)
            counts["orders"] += 1
        if not wants_return:
            continue
        returns_made += 1
        order = api.get_order(app, order_id)
        return_type = _return_type_for(target, order_rng)
        line_ids = [li["id"] for li in order["line_items"]]
        chosen = order_rng.sample(line_ids, order_rng.randint(1, len(line_ids)))
        if target in ACTIONABLE:
            # Deadlines ahead: opened 1-40 h ago; one in five is about to expire.
            opened = now - (order_rng.randint(44 * HOUR, 47 * HOUR) if order_rng.random() < 0.2
                            else order_rng.randint(1 * HOUR, 40 * HOUR))
            if return_type == sm.REPLACEMENT:
                opened = max(opened, now - 20 * HOUR)
        else:
            opened = created + order_rng.randint(3 * DAY, 4 * DAY)
        path = api._path_to(target, return_type) if target != sm.initial_status(return_type) else []
        if target == sm.BUYER_SHIPPED_ITEM and order_rng.random() < 0.5:  # parcel delivered: seller to act
            path = path + [(sm.BUYER_SHIPPED_ITEM, [sm.RESPOND_RECEIVE])]
        opened -= len(path) * 60
        reason, reason_text = order_rng.choice(REASONS)
        return_id = api.random_id("40", order_rng)
        if SandboxReturn.objects.filter(shop=shop, return_id=return_id).exists():
            continue
        api.create_return(app, order_id=order_id, return_type=return_type, order_line_item_ids=chosen,
                          return_id=return_id, return_reason=reason, return_reason_text=reason_text,
                          create_time=opened, notify=notify)
        _walk(app, return_id, path, start=opened, notify=notify)
        counts["returns"] += 1
    return counts


def _walk(app, return_id: str, path: list, *, start: int, notify: bool) -> None:
    at = start
    for step_status, step_actions in path:
        at += 60
        partial = None
        if step_status == sm.AWAITING_BUYER_RESPONSE:
            total = Decimal(api.SandboxReturn.objects.get(return_id=return_id, shop=api.get_shop(app))
                            .data["refund_amount"]["refund_total"])
            partial = {"amount": api.money(total / 2), "currency": "USD"}
        api.advance_return(app, return_id, to_status=step_status, next_actions=step_actions, update_time=at,
                           notify=notify, partial_refund=partial)


def traffic_tick(app, *, rng: random.Random, new_returns: int = 2, advance: int = 5) -> dict:
    """One step of live traffic: new orders with returns, and buyers/carriers/platform
    moving open returns along (the seller's own decisions are left to ReturnSync)."""
    app = api.get_app(app)
    shop = api.get_shop(app)
    now = api.now_ts()
    skus, bundles = build_catalog("traffic", random.Random(0))
    made = moved = 0
    for _ in range(rng.randint(0, new_returns)):
        order = api.create_order(app, lines=_order_lines(rng, skus, bundles), postal_code=rng.choice(POSTAL_CODES),
                                 status="DELIVERED", create_time=now - rng.randint(3 * DAY, 10 * DAY), rng=rng)
        return_type = rng.choice([sm.RETURN_AND_REFUND, sm.RETURN_AND_REFUND, sm.REFUND, sm.REPLACEMENT])
        reason, text = rng.choice(REASONS)
        api.create_return(app, order_id=order["id"], return_type=return_type, return_reason=reason,
                          return_reason_text=text, rng=rng)
        made += 1
    # Returns of the fault scenario (connectors.sandbox_faults) keep the state they were given.
    open_returns = list(SandboxReturn.objects.filter(shop=shop).exclude(return_status__in=sm.TERMINAL)
                        .exclude(data__return_reason_text__startswith=FAULT_SCENARIO_REASON)
                        .order_by("update_time")[:50])
    rng.shuffle(open_returns)
    for ret in open_returns[:advance]:
        step = _next_step(ret, now, rng)
        if step is None:
            continue
        if step == ANSWER_OFFER:
            api.buyer_answers_partial_refund(app, ret.return_id, accept=rng.random() < 0.75)
        elif step == PLATFORM_DECIDES:
            api.platform_decides(app, ret.return_id)
        else:
            to_status, actions = step
            api.advance_return(app, ret.return_id, to_status=to_status, next_actions=actions)
        moved += 1
    return {"created": made, "advanced": moved}


ANSWER_OFFER, PLATFORM_DECIDES = "answer_offer", "platform_decides"


def _next_step(ret: SandboxReturn, now: int, rng: random.Random):
    actions = {a["action"]: a["deadline"] for a in ret.data.get("seller_next_action_response") or []}
    status, rtype = ret.return_status, ret.return_type
    expired = any(deadline <= now for deadline in actions.values())
    if status in (sm.PENDING, sm.REPLACEMENT_PENDING):
        if expired:  # the platform auto-approves an unanswered request
            if rtype == sm.REFUND:
                return sm.SUCCESS, None
            return sm.AWAITING_BUYER_SHIP, None
        if rng.random() < 0.1:
            return (sm.REPLACEMENT_CANCEL if rtype == sm.REPLACEMENT else sm.CANCELLED), None
        return None
    if status == sm.AWAITING_BUYER_SHIP:
        return sm.BUYER_SHIPPED_ITEM, None
    if status == sm.BUYER_SHIPPED_ITEM:
        if sm.RESPOND_RECEIVE not in actions:
            return sm.BUYER_SHIPPED_ITEM, [sm.RESPOND_RECEIVE]  # parcel delivered to the seller
        if expired:
            return PLATFORM_DECIDES  # nobody answered the delivered parcel: TikTok approves it by itself
        return None
    if status == sm.AWAITING_BUYER_RESPONSE:
        return ANSWER_OFFER  # the buyer answers the partial-refund offer (see traffic_tick)
    if status == sm.SUCCESS:
        return sm.COMPLETE, None
    if status == sm.REJECT_RECEIVE_PACKAGE and rng.random() < 0.3:
        return sm.COMPLETE, None  # platform arbitration sides with the buyer
    return None
