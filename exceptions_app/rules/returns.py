"""Rules about a return's journey between TikTok and the portal (CX and operations)."""
from __future__ import annotations

from datetime import timedelta

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Rule, register
from returnsync.roles import Role


@register
class PortalBypass(Rule):
    code = "portal_bypass"
    title = "TikTok return missing from the portal"
    failure = "Platform-managed return bypasses the portal"
    owner = Role.OPERATIONS
    severity = Severity.HIGH
    sla = timedelta(hours=4)
    subject_kind = SubjectKind.MARKETPLACE_RETURN
    thresholds = {"grace_minutes": 30}
    threshold_help = {"grace_minutes": "How long after TikTok created the return the portal may still lack it "
                                       "(the mirror normally takes seconds)."}
    description = ("A TikTok return that needs a parcel back has no portal record after the grace period: "
                   "automatic mirroring did not happen or failed, so the buyer may have no label and the "
                   "warehouse will not recognise the parcel.")
    what_to_check = ("The mirror write-back on the return page (its last error), whether the portal "
                     "connection is enabled and healthy, and whether the order's SKUs exist in the portal.")
    how_to_resolve = ("Fix the cause (credentials, SKU, connection) and press Retry on the failed step; or "
                      "create the return in the portal by hand with the TikTok return id as its reference. "
                      "The exception closes itself once the portal record is linked.")


@register
class OrphanPortalReturn(Rule):
    code = "orphan_portal_return"
    title = "Portal return matches no TikTok return"
    failure = "Orphaned portal return"
    owner = Role.CX
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"grace_minutes": 60}
    threshold_help = {"grace_minutes": "How long a new portal return may wait for the TikTok sync to bring "
                                       "its order or return before it counts as orphaned."}
    description = ("A portal return whose order id and return reference match no TikTok order or return "
                   "we know: a typo by the buyer, an order from another channel, or a TikTok sync gap.")
    what_to_check = ("The order number and zip the buyer typed in the portal (evidence shows what was "
                     "tried), the TikTok order in Seller Center, and the TikTok connection's sync health.")
    how_to_resolve = ("Correct the order reference in the portal (the exception closes on the next sync), "
                      "or dismiss it when the return belongs to another sales channel.")


@register
class StatusDrift(Rule):
    code = "status_drift"
    title = "Received at the warehouse, unreturned on TikTok"
    failure = 'Status drift: received in the warehouse, "unreturned" on TikTok'
    owner = Role.OPERATIONS
    severity = Severity.HIGH
    sla = timedelta(hours=8)
    subject_kind = SubjectKind.PORTAL_RETURN
    thresholds = {"after_minutes": 120}
    threshold_help = {"after_minutes": "How long after the warehouse scan TikTok may still show the item as "
                                       "not returned (the write-back normally takes seconds)."}
    description = ("The warehouse scanned the parcel in, but TikTok still shows the return as awaiting the "
                   "item, so the refund is held and the buyer sees \"unreturned\".")
    what_to_check = ("The \"received package\" write-back on the return page (status, last error), TikTok's "
                     "current status and next action, and the TikTok connection's health.")
    how_to_resolve = ("Retry the failed write-back from here, or confirm receipt in Seller Center by hand. "
                      "The exception closes itself when TikTok reports the package received.")


@register
class TrackingMismatch(Rule):
    code = "tracking_mismatch"
    title = "Tracking numbers differ"
    failure = "Tracking mismatch"
    owner = Role.CX
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN
    description = ("TikTok and the portal carry different return tracking numbers for the same return (both "
                   "set; spaces and letter case ignored): the buyer may have shipped with another label, "
                   "and the parcel may not be recognised at the warehouse.")
    what_to_check = "Both tracking numbers and carriers side by side, and which one the carrier shows moving."
    how_to_resolve = ("Correct the wrong system (usually the portal label) or note which parcel is real; "
                      "the exception closes when both agree.")


@register
class ApprovalDeadline(Rule):
    code = "approval_deadline"
    title = "Approval deadline about to lapse"
    failure = "Approval deadline at risk"
    owner = Role.CX
    severity = Severity.HIGH
    sla = timedelta(hours=2)
    subject_kind = SubjectKind.MARKETPLACE_RETURN
    thresholds = {"warn_hours": 12}
    threshold_help = {"warn_hours": "Warn this many hours before TikTok's response deadline (TikTok "
                                    "auto-approves requests left unanswered for 48 h)."}
    description = ("A return request awaits the seller's response and TikTok's deadline is close: if nobody "
                   "answers, TikTok approves it automatically.")
    what_to_check = "The request (reason, amount, evidence photos) in Seller Center and the deadline shown here."
    how_to_resolve = ("Approve or reject the request in Seller Center before the deadline. The exception "
                      "closes itself once TikTok no longer waits for the seller.")
