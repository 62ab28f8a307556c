"""Rules about money (finance)."""
from __future__ import annotations

from datetime import timedelta

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Rule, register
from returnsync.roles import Role


@register
class RefundMismatch(Rule):
    code = "refund_mismatch"
    title = "Refund value differs between systems"
    failure = "Refund value mismatch"
    owner = Role.FINANCE
    severity = Severity.HIGH
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"tolerance_amount": "0.50", "tolerance_percent": "1.0"}
    threshold_help = {
        "tolerance_amount": "Differences up to this amount (in the return's currency) are accepted.",
        "tolerance_percent": "…or up to this percentage of the TikTok refund, whichever is larger.",
    }
    description = ("The refund the portal authorised differs from TikTok's refund figure beyond the "
                   "tolerance. The refund call is held until someone validates the amount.")
    what_to_check = ("Both amounts and currencies, the lines and their grading, shipping and restocking "
                     "fees, and any partial refund already offered.")
    how_to_resolve = ("Correct the authorised amount in the portal, or offer the right amount in Seller "
                      "Center; record the amount actually refunded when resolving.")


@register
class PartialRefund(Rule):
    code = "partial_refund"
    title = "Partial refund to settle by hand"
    failure = "Partial return / failed inspection"
    owner = Role.FINANCE
    severity = Severity.MEDIUM
    sla = timedelta(hours=48)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("Fewer items came back than expected, or an item failed grading. The refund must be "
                   "partial, and TikTok's API cannot take it from the portal: finance types the computed "
                   "amount into Seller Center. Bundle components are valued by the mapping's price shares.")
    what_to_check = "The per-line amounts (received vs expected, grade, value) and the currency."
    how_to_resolve = ("Offer the computed partial refund in Seller Center, then resolve here with the amount "
                      "actually refunded.")


@register
class RefundLag(Rule):
    code = "refund_lag"
    title = "Received but not refunded"
    failure = "Refund lag"
    owner = Role.FINANCE
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"lag_hours": 72}
    threshold_help = {"lag_hours": "How long after warehouse receipt the refund may take (the marketplace's "
                                   "service level)."}
    description = "The warehouse received the return longer ago than the service level, and no refund has been made."
    what_to_check = ("TikTok's status and next action, the refund write-backs, open partial-refund or "
                     "mismatch exceptions on the same return (they hold the refund).")
    how_to_resolve = "Release the refund in Seller Center (or fix what holds it); the exception closes on refund."


@register
class RefundOutsidePortal(Rule):
    code = "refund_outside_portal"
    title = "Refunded on TikTok while the portal return is open"
    failure = "Refund outside the portal"
    owner = Role.FINANCE
    severity = Severity.CRITICAL
    sla = timedelta(hours=4)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("TikTok shows the return refunded while the portal still treats it as open: the portal "
                   "may refund the buyer a second time.")
    what_to_check = "TikTok's refund (amount, time), the portal's status, and any refund the portal has queued."
    how_to_resolve = ("Close or cancel the return in the portal so it cannot refund again; if both already "
                      "refunded, start recovery with the buyer and note it here.")
