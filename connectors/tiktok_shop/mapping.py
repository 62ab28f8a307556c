"""TikTok Shop payloads → our canonical rows. Every vendor quirk lives here.

The API is loose with types, so every reader is lenient:

- ids arrive as strings or numbers → always ``str`` (``577087...`` and ``"577087..."``
  are the same id; a float such as ``1.0`` becomes ``"1"``);
- amounts arrive as strings (``"24.00"``), sometimes numbers or empty → ``Decimal`` or None;
- times are unix seconds (sometimes milliseconds, sometimes a numeric string, rarely
  ISO-8601) → aware UTC ``datetime`` or None;
- enums are open: an unknown ``return_status`` is stored raw and its stage is
  ``Stage.UNMAPPED`` (see ``returnsync.stages``), never an error.

String values are clipped to the column widths so one odd payload cannot fail a whole
page on PostgreSQL.
"""
from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from returnsync.choices import Stage
from returnsync.stages import table_lookup

# TikTok's return statuses → the canonical stage (registered as the connector's status table).
STATUS_TABLE: dict[str, Stage] = {
    "RETURN_OR_REFUND_REQUEST_PENDING": Stage.REQUESTED,
    "REFUND_OR_RETURN_REQUEST_REJECT": Stage.REJECTED,
    "RETURN_OR_REFUND_REQUEST_REJECT": Stage.REJECTED,
    "AWAITING_BUYER_SHIP": Stage.APPROVED,
    "BUYER_SHIPPED_ITEM": Stage.IN_TRANSIT,
    "REJECT_RECEIVE_PACKAGE": Stage.REJECTED,
    "RETURN_OR_REFUND_REQUEST_SUCCESS": Stage.REFUNDED,
    "RETURN_OR_REFUND_REQUEST_CANCEL": Stage.CANCELLED,
    "RETURN_OR_REFUND_REQUEST_COMPLETE": Stage.CLOSED,
    "AWAITING_BUYER_RESPONSE": Stage.REQUESTED,
    "REPLACEMENT_REQUEST_PENDING": Stage.REQUESTED,
    "REPLACEMENT_REQUEST_REJECT": Stage.REJECTED,
    "REPLACEMENT_REQUEST_REFUND_SUCCESS": Stage.REFUNDED,
    "REPLACEMENT_REQUEST_CANCEL": Stage.CANCELLED,
    "REPLACEMENT_REQUEST_COMPLETE": Stage.CLOSED,
}

# TikTok has no "received" status: receipt shows as this next action after BUYER_SHIPPED_ITEM.
RECEIVED_ACTION = "SELLER_RESPOND_RECEIVE_PACKAGE"


def tiktok_stage(raw_status: str, next_actions: list[str] | tuple[str, ...] = ()) -> Stage:
    """TikTok's stage, reading receipt from the next action the seller owes."""
    stage = table_lookup(STATUS_TABLE, raw_status)
    if stage == Stage.IN_TRANSIT and RECEIVED_ACTION in next_actions:
        return Stage.RECEIVED
    return stage


# ``1e12`` seconds is the year 33658: anything above is milliseconds.
_MS_THRESHOLD = 10**12


def as_str(value: Any, max_length: int | None = None) -> str:
    """An id or a label as a string ("" for None); numbers keep no trailing ``.0``."""
    if value.__class__ is str:  # the common case first: a page maps thousands of values
        text = value.strip()
        return text[:max_length] if max_length else text
    if value is None:
        return ""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, float) and value.is_integer():
        text = str(int(value))
    else:
        text = str(value).strip()
    return text[:max_length] if max_length else text


def as_decimal(value: Any) -> Decimal | None:
    """``"24.00"``, ``24``, ``24.0`` → ``Decimal("24.00")``-ish; empty/invalid → None."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, Decimal):
        return value
    if isinstance(value, float):
        value = repr(value)
    text = str(value).strip().replace(",", "")
    if not text:
        return None
    try:
        amount = Decimal(text)
    except InvalidOperation:
        return None
    if not amount.is_finite():
        return None
    return amount.quantize(Decimal("0.01"))


def as_bool(value: Any) -> bool | None:
    """``true``/``"true "``/``1``/``"1"`` → True, the false spellings → False, else None."""
    if isinstance(value, bool):
        return value
    if isinstance(value, int | float):
        return bool(value)
    text = str(value or "").strip().lower()
    if text in ("true", "1", "yes", "y"):
        return True
    if text in ("false", "0", "no", "n"):
        return False
    return None


def as_int(value: Any, default: int | None = None) -> int | None:
    if value is None or isinstance(value, bool):
        return default
    try:
        return int(Decimal(str(value).strip()))
    except (InvalidOperation, ValueError):
        return default


def as_datetime(value: Any) -> datetime | None:
    """Unix seconds/milliseconds (int, float or numeric string) or ISO-8601 → aware UTC."""
    if value is None or value == "" or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    number = None
    if isinstance(value, int | float):
        number = value
    else:
        text = str(value).strip()
        try:
            number = float(text)
        except ValueError:
            try:
                parsed = datetime.fromisoformat(text)
            except ValueError:
                return None
            return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    if number <= 0:
        return None
    if number >= _MS_THRESHOLD:
        number = number / 1000
    try:
        return datetime.fromtimestamp(number, tz=UTC)
    except (OverflowError, OSError, ValueError):
        return None


def _dict(value: Any) -> dict:
    return value if isinstance(value, dict) else {}


def _list(value: Any) -> list:
    return value if isinstance(value, list) else []


def next_action_of(payload: dict) -> tuple[str, datetime | None, list[str]]:
    """The action the seller owes first (earliest deadline), its deadline, and all actions.

    ``seller_next_action_response`` is authoritative for deadlines. Actions without a
    deadline sort after those with one; with no deadlines at all the first listed wins.
    """
    actions: list[tuple[datetime | None, int, str]] = []
    for index, item in enumerate(_list(payload.get("seller_next_action_response"))):
        item = _dict(item)
        action = as_str(item.get("action"), 64)
        if action:
            actions.append((as_datetime(item.get("deadline")), index, action))
    if not actions:
        return "", None, []
    far = datetime.max.replace(tzinfo=UTC)
    deadline, _, action = min(actions, key=lambda a: (a[0] or far, a[1]))
    return action, deadline, [a[2] for a in actions]


def return_to_canonical(payload: dict) -> dict:
    """A Search Returns ``return_orders[]`` item → the fields of ``MarketplaceReturn``
    plus ``lines`` (fields of ``MarketplaceReturnLine``, one per returned unit)."""
    payload = _dict(payload)
    refund = _dict(payload.get("refund_amount"))
    currency = as_str(refund.get("currency"), 3).upper()
    raw_status = as_str(payload.get("return_status"), 64)
    next_action, deadline, actions = next_action_of(payload)
    lines = []
    seen: set[str] = set()
    for index, item in enumerate(_list(payload.get("return_line_items"))):
        item = _dict(item)
        line_refund = _dict(item.get("refund_amount"))
        line_id = as_str(item.get("return_line_item_id"), 64) or f"#{index}"
        if line_id in seen:
            continue
        seen.add(line_id)
        lines.append({
            "line_id": line_id,
            "order_line_id": as_str(item.get("order_line_item_id"), 64),
            "sku_id": as_str(item.get("sku_id"), 64),
            "seller_sku": as_str(item.get("seller_sku"), 100),
            "product_name": as_str(item.get("product_name"), 300),
            "refund_amount": _non_negative(as_decimal(line_refund.get("refund_total"))),
            "currency": as_str(line_refund.get("currency"), 3).upper() or currency,
        })
    return {
        "return_id": as_str(payload.get("return_id"), 64),
        "order_ref": as_str(payload.get("order_id"), 64),
        "return_type": as_str(payload.get("return_type"), 40),
        "raw_status": raw_status,
        "stage": str(tiktok_stage(raw_status, actions)),
        "role": as_str(payload.get("role") or payload.get("return_role"), 20),
        "reason": as_str(payload.get("return_reason_text") or payload.get("return_reason"), 300),
        "tracking_number": as_str(payload.get("return_tracking_number"), 100),
        "carrier": as_str(payload.get("return_provider_name"), 100),
        "refund_total": _non_negative(as_decimal(refund.get("refund_total"))),
        "refund_subtotal": _non_negative(as_decimal(refund.get("refund_subtotal"))),
        "refund_shipping": as_decimal(refund.get("refund_shipping_fee")),
        "refund_tax": as_decimal(refund.get("refund_tax")),
        "currency": currency,
        "seller_proposed_return_type": as_str(payload.get("seller_proposed_return_type"), 40),
        "partial_refund_offered": _non_negative(as_decimal(_dict(payload.get("partial_refund")).get("amount"))),
        "buyer_rejected_partial_refund": as_bool(payload.get("buyer_rejected_partial_refund")),
        "is_combined_return": bool(as_bool(payload.get("is_combined_return"))),
        "refunded_amount": refunded_amount(payload),
        "combined_return_id": as_str(payload.get("combined_return_id"), 64),
        "next_action": next_action,
        "next_action_deadline": deadline,
        "source_created_at": as_datetime(payload.get("create_time")),
        "source_updated_at": as_datetime(payload.get("update_time")),
        "raw": payload,
        "lines": lines,
    }


def order_to_canonical(payload: dict) -> dict:
    """A Get Order Detail ``orders[]`` item → the fields of ``Order`` plus ``lines``
    (one per unit sold, each with its bundle ``components`` from ``combined_listing_skus``)."""
    payload = _dict(payload)
    payment = _dict(payload.get("payment"))
    address = _dict(payload.get("recipient_address"))
    currency = as_str(payment.get("currency") or payload.get("currency"), 3).upper()
    lines = []
    seen: set[str] = set()
    for index, item in enumerate(_list(payload.get("line_items"))):
        item = _dict(item)
        line_id = as_str(item.get("id"), 64) or f"#{index}"
        if line_id in seen:
            continue
        seen.add(line_id)
        components = []
        seen_components: set[tuple[str, str]] = set()
        for comp in _list(item.get("combined_listing_skus")):
            comp = _dict(comp)
            key = (as_str(comp.get("sku_id"), 64), as_str(comp.get("seller_sku"), 100))
            if key in seen_components:
                continue
            seen_components.add(key)
            components.append({
                "sku_id": key[0],
                "seller_sku": key[1],
                "product_id": as_str(comp.get("product_id"), 64),
                "quantity": max(as_int(comp.get("sku_count"), 1) or 1, 1),
            })
        line_currency = as_str(item.get("currency"), 3).upper() or currency
        lines.append({
            "line_id": line_id,
            "sku_id": as_str(item.get("sku_id"), 64),
            "seller_sku": as_str(item.get("seller_sku"), 100),
            "product_id": as_str(item.get("product_id"), 64),
            "product_name": as_str(item.get("product_name"), 300),
            "sale_price": _non_negative(as_decimal(item.get("sale_price"))) or Decimal("0.00"),
            "currency": line_currency,
            "components": components,
        })
    if not currency and lines:
        currency = lines[0]["currency"]
    return {
        "order_id": as_str(payload.get("id") or payload.get("order_id"), 64),
        "raw_status": as_str(payload.get("status") or payload.get("order_status"), 64),
        "buyer_postal_code": as_str(address.get("postal_code") or address.get("zipcode"), 20),
        "currency": currency,
        "placed_at": as_datetime(payload.get("create_time")),
        "source_updated_at": as_datetime(payload.get("update_time")),
        "raw": payload,
        "lines": lines,
    }


def _non_negative(amount: Decimal | None) -> Decimal | None:
    """Amounts are stored non-negative (a check constraint); a negative one is dropped."""
    if amount is not None and amount < 0:
        return None
    return amount


def webhook_subject(payload: dict) -> tuple[str, str]:
    """(event type as a string, the return/order id it is about) of a webhook body."""
    payload = _dict(payload)
    data = _dict(payload.get("data"))
    kind = as_str(payload.get("type"))
    subject = as_str(data.get("return_id") or data.get("cancel_id") or data.get("order_id"), 64)
    return kind, subject


# Return statuses meaning TikTok has paid the refund: the sync records a ``Refund`` for them
# (TikTok's own refund id is not in the return payload, so one refund per return).
REFUNDED_STATUSES = frozenset({
    "RETURN_OR_REFUND_REQUEST_SUCCESS", "RETURN_OR_REFUND_REQUEST_COMPLETE", "REPLACEMENT_REQUEST_REFUND_SUCCESS",
})


def refunded_amount(payload: dict) -> Decimal | None:
    """What TikTok paid on a refunded return: the accepted partial refund when the seller's
    offer was taken (``seller_proposed_return_type`` PARTIAL_REFUND, not rejected by the
    buyer), else the request's ``refund_total``. **Uncertain**: whether TikTok also rewrites
    ``refund_amount`` after an accepted offer is not documented; this reads either shape."""
    payload = _dict(payload)
    total = _non_negative(as_decimal(_dict(payload.get("refund_amount")).get("refund_total")))
    offered = _non_negative(as_decimal(_dict(payload.get("partial_refund")).get("amount")))
    accepted = (as_str(payload.get("seller_proposed_return_type")).upper() == "PARTIAL_REFUND"
                and as_bool(payload.get("buyer_rejected_partial_refund")) is False)
    if accepted and offered is not None:
        return min(offered, total) if total is not None else offered
    return total


def refund_external_id(return_id: str) -> str:
    return f"return:{return_id}"



# --- partial-refund offers (OFFER_PARTIAL_REFUND) ----------------------------------------------
# The buyer must accept an offer and keeps the item. TikTok takes it while the request waits
# for the seller; whether it does after the parcel is received is **uncertain** (listed here
# so a connection can drop it: ``options["partial_refund_offer_actions"]``). Market caps per
# region (US from the seller docs; **uncertain** in detail), overridable with
# ``options["partial_refund_caps"]``: item price range, offer as a share of the price, and
# absolute bounds, all in the shop's currency.
PARTIAL_REFUND_OFFER_ACTIONS = ("SELLER_RESPOND_REFUND", "SELLER_RESPOND_RETURN", RECEIVED_ACTION)
PARTIAL_REFUND_CAPS = {
    "US": {"price_min": "10", "price_max": "100", "percent_min": "10", "percent_max": "50",
           "amount_min": "5", "amount_max": "50"},
}


def offer_config(connection) -> dict:
    options = connection.options or {}
    region = str(options.get("shop_region") or options.get("region") or "").upper()
    caps = options.get("partial_refund_caps")
    return {"actions": tuple(options.get("partial_refund_offer_actions") or PARTIAL_REFUND_OFFER_ACTIONS),
            "caps": caps if isinstance(caps, dict) else PARTIAL_REFUND_CAPS.get(region)}


def offer_cap_refusal(*, caps: dict | None, amount: Decimal, price: Decimal) -> str:
    """Why an offer of ``amount`` on an item priced ``price`` is outside the caps ("" when it
    is inside, or when no caps are known for the shop's region: TikTok then judges)."""
    if not caps:
        return ""
    if not Decimal(str(caps["price_min"])) <= price <= Decimal(str(caps["price_max"])):
        return (f"TikTok offers partial refunds only on items priced {caps['price_min']}–{caps['price_max']} "
                f"(this one: {price}): refund by hand in Seller Center.")
    low = max(Decimal(str(caps["amount_min"])), price * Decimal(str(caps["percent_min"])) / 100)
    high = min(Decimal(str(caps["amount_max"])), price * Decimal(str(caps["percent_max"])) / 100)
    if not low <= amount <= high:
        return (f"An offer on this item must be between {low:.2f} and {high:.2f} (TikTok's caps); "
                f"{amount} is outside: refund by hand in Seller Center.")
    return ""


# --- a person's decision on a request ---------------------------------------------------------
# What TikTok waits for (the next action) → the approve and reject decisions that answer it.
# The received-package decision is not here: the refund gate owns it.
REQUEST_DECISIONS = {
    "SELLER_RESPOND_REFUND": ("APPROVE_REFUND", "REJECT_REFUND"),
    "SELLER_RESPOND_RETURN": ("APPROVE_RETURN", "REJECT_RETURN"),
    "SELLER_RESPOND_REPLACEMENT": ("APPROVE_REPLACEMENT", "REJECT_REPLACEMENT"),
}
# Seller Center pages for an order and a return (**uncertain** paths; per region host),
# overridable with ``options["seller_center_urls"]``.
SELLER_CENTER_URLS = {
    "order": "https://seller-{region}.tiktok.com/order/detail?order_no={order_id}",
    "return": "https://seller-{region}.tiktok.com/order/refund/detail?reverse_order_id={return_id}",
}


def seller_center_links(connection, *, order_id: str, return_id: str) -> dict[str, str]:
    from urllib.parse import quote

    options = connection.options or {}
    urls = {**SELLER_CENTER_URLS, **(options.get("seller_center_urls") or {})}
    region = str(options.get("shop_region") or options.get("region") or "us").lower()
    values = {"region": quote(region), "order_id": quote(order_id or ""), "return_id": quote(return_id or "")}
    try:
        return {name: template.format(**values) for name, template in urls.items()}
    except (KeyError, IndexError, ValueError):
        return {}
