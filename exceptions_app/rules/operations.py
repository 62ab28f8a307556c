"""Rules about stock and SKUs (operations)."""
from __future__ import annotations

from datetime import timedelta

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Rule, register
from returnsync.roles import Role


@register
class BundleComponentUnmapped(Rule):
    code = "bundle_component_unmapped"
    title = "Returned SKU not mapped to its bundle"
    failure = "Bundle component returned"
    owner = Role.OPERATIONS
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN_LINE
    description = ("A returned item's SKU is neither a line of the TikTok order nor a component of a mapped "
                   "bundle on it: its refund share and its restock cannot be computed.")
    what_to_check = "The order's lines (a bundle SKU?), the returned SKU, and the bundle mappings page."
    how_to_resolve = ("Add or correct the bundle mapping (components and price shares summing to 1); the "
                      "exception closes on the next pass and the restock follows.")


@register
class RestockLatency(Rule):
    code = "restock_latency"
    title = "Sellable item not back in stock"
    failure = "Return-to-stock latency"
    owner = Role.OPERATIONS
    severity = Severity.MEDIUM
    sla = timedelta(hours=24)
    subject_kind = SubjectKind.PORTAL_RETURN_LINE
    thresholds = {"latency_hours": 4}
    threshold_help = {"latency_hours": "How long after grading sellable the TikTok stock update may take."}
    description = ("An item was graded sellable but no inventory update has been confirmed on TikTok within "
                   "the threshold: stock that came back is not on sale.")
    what_to_check = ("The restock queue row for the SKU (status, last error), the warehouse mapping for the "
                     "portal's location, and the SKU on TikTok.")
    how_to_resolve = ("Fix the mapping or the SKU and retry the restock; or update stock in Seller Center by "
                      "hand and resolve with \"restocked by hand\".")
