"""The TikTok Shop return state machine as the sandbox plays it, and its error codes.

Codes marked *uncertain* are not confirmed by API_NOTES; they are kept here so one
edit corrects them everywhere.
"""
from __future__ import annotations

# --- Error codes ------------------------------------------------------------------------
OK = 0
INVALID_SIGN = 106001
INVALID_PARAMS = 36009004          # bad/missing sign, timestamp, token or params
RATE_LIMITED = 36009002
SERVER_BUSY = 36009003             # uncertain: body code of the HTTP 503 answer
INVALID_TOKEN = 105001             # uncertain: unknown access token
EXPIRED_TOKEN = 105002
INVALID_REFRESH = 105003           # uncertain: unknown/expired refresh token or auth code
ALREADY_APPROVED = 25020010
ALREADY_RECEIVED = 25020011
CANNOT_APPROVE = 25011013          # the return's state does not allow this decision
RETURN_NOT_FOUND = 25001001        # uncertain
PRODUCT_NOT_FOUND = 12052048       # uncertain
SKU_NOT_FOUND = 12052049           # uncertain
WAREHOUSE_NOT_FOUND = 12052050     # uncertain
INVALID_QUANTITY = 12052051        # uncertain

# --- Statuses and actions ---------------------------------------------------------------
PENDING = "RETURN_OR_REFUND_REQUEST_PENDING"
REJECTED = "REFUND_OR_RETURN_REQUEST_REJECT"
AWAITING_BUYER_SHIP = "AWAITING_BUYER_SHIP"
BUYER_SHIPPED_ITEM = "BUYER_SHIPPED_ITEM"
REJECT_RECEIVE_PACKAGE = "REJECT_RECEIVE_PACKAGE"
SUCCESS = "RETURN_OR_REFUND_REQUEST_SUCCESS"
CANCELLED = "RETURN_OR_REFUND_REQUEST_CANCEL"
COMPLETE = "RETURN_OR_REFUND_REQUEST_COMPLETE"
AWAITING_BUYER_RESPONSE = "AWAITING_BUYER_RESPONSE"
REPLACEMENT_PENDING = "REPLACEMENT_REQUEST_PENDING"
REPLACEMENT_REJECT = "REPLACEMENT_REQUEST_REJECT"
REPLACEMENT_REFUND_SUCCESS = "REPLACEMENT_REQUEST_REFUND_SUCCESS"
REPLACEMENT_CANCEL = "REPLACEMENT_REQUEST_CANCEL"
REPLACEMENT_COMPLETE = "REPLACEMENT_REQUEST_COMPLETE"

ALL_STATUSES = (
    PENDING, REJECTED, AWAITING_BUYER_SHIP, BUYER_SHIPPED_ITEM, REJECT_RECEIVE_PACKAGE,
    SUCCESS, CANCELLED, COMPLETE, AWAITING_BUYER_RESPONSE, REPLACEMENT_PENDING,
    REPLACEMENT_REJECT, REPLACEMENT_REFUND_SUCCESS, REPLACEMENT_CANCEL, REPLACEMENT_COMPLETE,
)
TERMINAL = frozenset({
    REJECTED, CANCELLED, COMPLETE, REPLACEMENT_REJECT, REPLACEMENT_REFUND_SUCCESS,
    REPLACEMENT_CANCEL, REPLACEMENT_COMPLETE,
})

REFUND = "REFUND"
RETURN_AND_REFUND = "RETURN_AND_REFUND"
REPLACEMENT = "REPLACEMENT"
RETURN_TYPES = (REFUND, RETURN_AND_REFUND, REPLACEMENT)

RESPOND_REFUND = "SELLER_RESPOND_REFUND"
RESPOND_RETURN = "SELLER_RESPOND_RETURN"
RESPOND_RECEIVE = "SELLER_RESPOND_RECEIVE_PACKAGE"
RESPOND_REPLACEMENT = "SELLER_RESPOND_REPLACEMENT"

HOUR = 3600
ACTION_WINDOW = {
    RESPOND_REFUND: 48 * HOUR,
    RESPOND_RETURN: 48 * HOUR,
    RESPOND_RECEIVE: 48 * HOUR,
    RESPOND_REPLACEMENT: 24 * HOUR,
}

# decision -> (action it answers, status it leads to (by return type or one for all))
APPROVALS = {
    "APPROVE_REFUND": ((RESPOND_REFUND,), SUCCESS),
    "APPROVE_RETURN": ((RESPOND_RETURN,), AWAITING_BUYER_SHIP),
    "APPROVE_RECEIVED_PACKAGE": ((RESPOND_RECEIVE,), None),  # SUCCESS, or REPLACEMENT_COMPLETE
    "APPROVE_REPLACEMENT": ((RESPOND_REPLACEMENT,), AWAITING_BUYER_SHIP),
    "ISSUE_REPLACEMENT_REFUND": ((RESPOND_REPLACEMENT,), REPLACEMENT_REFUND_SUCCESS),
    "OFFER_PARTIAL_REFUND": ((RESPOND_REFUND, RESPOND_RETURN, RESPOND_RECEIVE), AWAITING_BUYER_RESPONSE),
}
REJECTIONS = {
    "REJECT_REFUND": ((RESPOND_REFUND,), REJECTED),
    "REJECT_RETURN": ((RESPOND_RETURN,), REJECTED),
    "REJECT_RECEIVED_PACKAGE": ((RESPOND_RECEIVE,), REJECT_RECEIVE_PACKAGE),
    "REJECT_REPLACEMENT": ((RESPOND_REPLACEMENT,), REPLACEMENT_REJECT),
}

# Statuses in which a request has already been approved, per approving decision.
_APPROVED_AFTER = {
    "APPROVE_REFUND": {SUCCESS, COMPLETE},
    "APPROVE_RETURN": {AWAITING_BUYER_SHIP, BUYER_SHIPPED_ITEM, REJECT_RECEIVE_PACKAGE, SUCCESS, COMPLETE},
    "APPROVE_REPLACEMENT": {AWAITING_BUYER_SHIP, BUYER_SHIPPED_ITEM, REJECT_RECEIVE_PACKAGE, REPLACEMENT_COMPLETE},
    "ISSUE_REPLACEMENT_REFUND": {REPLACEMENT_REFUND_SUCCESS},
    "OFFER_PARTIAL_REFUND": {AWAITING_BUYER_RESPONSE},
}

EVENTS = {
    PENDING: "BUYER_REQUEST",
    REPLACEMENT_PENDING: "BUYER_REQUEST_REPLACEMENT",
    REJECTED: "SELLER_REJECT_REQUEST",
    REPLACEMENT_REJECT: "SELLER_REJECT_REPLACEMENT",
    AWAITING_BUYER_SHIP: "SELLER_APPROVE_REQUEST",
    BUYER_SHIPPED_ITEM: "BUYER_SHIP_ITEM",
    REJECT_RECEIVE_PACKAGE: "SELLER_REJECT_RECEIVE_PACKAGE",
    SUCCESS: "REFUND_SUCCESS",
    REPLACEMENT_REFUND_SUCCESS: "REFUND_SUCCESS",
    CANCELLED: "BUYER_CANCEL_REQUEST",
    REPLACEMENT_CANCEL: "BUYER_CANCEL_REQUEST",
    COMPLETE: "REQUEST_COMPLETE",
    REPLACEMENT_COMPLETE: "REQUEST_COMPLETE",
    AWAITING_BUYER_RESPONSE: "SELLER_OFFER_PARTIAL_REFUND",
}


def initial_status(return_type: str) -> str:
    return REPLACEMENT_PENDING if return_type == REPLACEMENT else PENDING


def default_next_actions(status: str, return_type: str) -> list[str]:
    """Seller actions a status implies. A shipped parcel gets SELLER_RESPOND_RECEIVE_PACKAGE
    only once it is delivered, which callers say explicitly (``next_actions``)."""
    if status == PENDING:
        return [RESPOND_REFUND if return_type == REFUND else RESPOND_RETURN]
    if status == REPLACEMENT_PENDING:
        return [RESPOND_REPLACEMENT]
    return []


def action_list(actions, *, now: int) -> list[dict]:
    """Normalise ``["SELLER_RESPOND_RETURN"]`` or ``[{"action":..,"deadline":..}]``."""
    out = []
    for item in actions or []:
        if isinstance(item, dict):
            action = item["action"]
            deadline = int(item.get("deadline") or now + ACTION_WINDOW.get(action, 48 * HOUR))
        else:
            action, deadline = str(item), now + ACTION_WINDOW.get(str(item), 48 * HOUR)
        out.append({"action": action, "deadline": deadline})
    return out


class DecisionError(Exception):
    def __init__(self, code: int, message: str):
        super().__init__(message)
        self.code = code
        self.message = message


def decide(*, kind: str, decision: str, return_type: str, status: str, actions: list[str],
           received: bool) -> str:
    """Validate a seller decision; return the status it leads to or raise DecisionError."""
    table = APPROVALS if kind == "approve" else REJECTIONS
    if decision not in table:
        raise DecisionError(INVALID_PARAMS, f"Invalid decision: {decision!r}")
    wanted_actions, to_status = table[decision]
    already_received = received or (
        return_type != REFUND and status in (SUCCESS, COMPLETE, REPLACEMENT_COMPLETE)
        and RESPOND_RECEIVE not in actions
    )
    if decision in ("APPROVE_RECEIVED_PACKAGE", "REJECT_RECEIVED_PACKAGE") and already_received:
        raise DecisionError(ALREADY_RECEIVED, "The package has already been received.")
    if kind == "approve":
        if status in _APPROVED_AFTER.get(decision, set()) and not set(wanted_actions) & set(actions):
            raise DecisionError(ALREADY_APPROVED, "The request has already been approved.")
    else:
        approvals = [d for d, (acts, _) in APPROVALS.items() if set(acts) & set(wanted_actions)]
        if any(status in _APPROVED_AFTER.get(d, set()) for d in approvals if d != "OFFER_PARTIAL_REFUND") \
                and not set(wanted_actions) & set(actions):
            raise DecisionError(ALREADY_APPROVED, "The request has already been approved.")
    if not set(wanted_actions) & set(actions):
        raise DecisionError(
            CANNOT_APPROVE,
            f"Return status {status} does not allow {decision} (next actions: {', '.join(actions) or 'none'}).",
        )
    if to_status is None:  # APPROVE_RECEIVED_PACKAGE
        to_status = REPLACEMENT_COMPLETE if return_type == REPLACEMENT else SUCCESS
    return to_status


# Partial-refund offers: TikTok's market caps (US, from the seller docs; other regions' caps
# are unknown here, so the sandbox applies none there). **Uncertain** in detail.
PARTIAL_REFUND_CAPS = {
    "US": {"price_min": "10", "price_max": "100", "percent_min": "10", "percent_max": "50",
           "amount_min": "5", "amount_max": "50"},
}


def partial_refund_cap_error(*, region: str, amount, price) -> str:
    """Why an offer is outside the region's caps ("" when it is inside, or the region has none)."""
    from decimal import Decimal

    caps = PARTIAL_REFUND_CAPS.get(str(region or "").upper())
    if not caps:
        return ""
    amount, price = Decimal(amount), Decimal(price)
    if not Decimal(caps["price_min"]) <= price <= Decimal(caps["price_max"]):
        return f"Partial refunds are offered on items priced {caps['price_min']}-{caps['price_max']} only."
    low = max(Decimal(caps["amount_min"]), price * Decimal(caps["percent_min"]) / 100)
    high = min(Decimal(caps["amount_max"]), price * Decimal(caps["percent_max"]) / 100)
    if not low <= amount <= high:
        return f"partial_refund.amount must be between {low:.2f} and {high:.2f} for this item."
    return ""


# Reject reasons per seller action (names in TikTok's style; the real list is longer).
REJECT_REASONS = {
    RESPOND_REFUND: [("seller_reject_apply_product_used", "The item has been used"),
                     ("seller_reject_apply_no_reason", "The buyer's reason does not apply")],
    RESPOND_RETURN: [("seller_reject_apply_product_used", "The item has been used"),
                     ("seller_reject_apply_outside_policy", "Outside the return policy")],
    RESPOND_RECEIVE: [("seller_reject_receive_package_empty", "The parcel was empty"),
                      ("seller_reject_receive_package_damaged", "The item came back damaged")],
    RESPOND_REPLACEMENT: [("seller_reject_replacement_out_of_stock", "No replacement in stock")],
}


def reject_reasons(actions) -> list[tuple[str, str]]:
    seen: list[tuple[str, str]] = []
    for action in actions:
        for reason in REJECT_REASONS.get(action, []):
            if reason not in seen:
                seen.append(reason)
    return seen
