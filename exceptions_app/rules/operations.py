"""Rules about stock and SKUs (operations)."""
from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime, timedelta

from django.db.models import Exists, OuterRef, Q, Subquery

from exceptions_app.choices import Severity, SubjectKind
from exceptions_app.rules.base import Finding, Rule, Scope, register
from exceptions_app.rules.query import LINKED_TIKTOK_COLUMNS, PORTAL_COLUMNS, portal_finding, scoped
from returnsync.choices import Grade, JobStatus, Stage
from returnsync.roles import Role

PR = "portal_return__"
LINE_COLUMNS = ("id", "line_id", "sku", "product_name", "expected_quantity", "received_quantity", "grade",
                "unit_price", "currency")
LINE_PORTAL_COLUMNS = tuple(PR + name for name in (*PORTAL_COLUMNS, *LINKED_TIKTOK_COLUMNS))


def _line_side(row: dict) -> dict:
    return {name: row[name] for name in LINE_COLUMNS if name != "id"}


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

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import BundleComponent, OrderLine, PortalReturnLine

        order_lines = OrderLine.objects.filter(order=OuterRef("portal_return__order_id"))
        mapped_bundles = BundleComponent.objects.filter(
            component_sku=OuterRef(OuterRef("sku")), bundle__is_active=True,
        ).values("bundle__bundle_sku")
        rows = list(
            scoped(PortalReturnLine.objects.all(), scope, PR + "order_ref")
            .filter(portal_return__order__isnull=False)
            .exclude(sku="")
            .exclude(portal_return__stage__in=(Stage.CANCELLED, Stage.REJECTED))
            .filter(~Exists(order_lines.filter(seller_sku=OuterRef("sku"))))
            .filter(~Exists(order_lines.filter(seller_sku__in=Subquery(mapped_bundles))))
            .values(*LINE_COLUMNS, *LINE_PORTAL_COLUMNS, "portal_return__order_id")
        )
        if not rows:
            return
        # What the order sold, for the evidence: one query over the faulty rows' orders only.
        sold: dict[int, list[str]] = defaultdict(list)
        for order_id, sku in (OrderLine.objects.filter(order_id__in={r["portal_return__order_id"] for r in rows})
                              .order_by("order_id", "line_id").values_list("order_id", "seller_sku")):
            sold[order_id].append(sku)
        for row in rows:
            order_skus = sold[row["portal_return__order_id"]]
            yield portal_finding(
                self, row, prefix=PR, subject_kind=SubjectKind.PORTAL_RETURN_LINE, subject_id=row["id"],
                computed={"returned_sku": row["sku"], "order_skus": order_skus,
                          "mapped": False},
                extra={"line": _line_side(row)},
                title=f"Order {row[PR + 'order_ref']}: returned SKU {row['sku']} is not on the order or a mapped bundle",
                fingerprint_values=[row["sku"], order_skus],
            )


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
    description = ("An item was graded sellable but its inventory update has not been confirmed on TikTok "
                   "within the threshold: stock that came back is not on sale. Each SKU counts on its own: a "
                   "bundle line is restocked as its components, and one component's update that went through "
                   "does not hide another's that did not.")
    what_to_check = ("The restock queue rows for the SKUs listed (status, last error), the warehouse mapping for "
                     "the portal's location, and the SKU on TikTok.")
    how_to_resolve = ("Fix the mapping or the SKU and retry the restock; or update stock in Seller Center by "
                      "hand and resolve with \"restocked by hand\".")

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        from returnsync.models import BundleMapping, InventoryAdjustment, PortalReturnLine

        latency = int(self.threshold("latency_hours"))
        cutoff = now - timedelta(hours=latency)
        succeeded = InventoryAdjustment.objects.filter(portal_return_line=OuterRef("pk"), status=JobStatus.SUCCEEDED)
        bundle_skus = BundleMapping.objects.filter(is_active=True).values("bundle_sku")
        # Lines with no confirmed update at all, and bundle lines (each component is judged below).
        rows = list(
            scoped(PortalReturnLine.objects.all(), scope, PR + "order_ref")
            .filter(grade=Grade.SELLABLE, received_quantity__gt=0)
            .filter(Q(portal_return__inspected_at__lte=cutoff)
                    | Q(portal_return__inspected_at__isnull=True, portal_return__received_at__lte=cutoff))
            .filter(~Exists(succeeded) | Q(sku__in=Subquery(bundle_skus)))
            .values(*LINE_COLUMNS, *LINE_PORTAL_COLUMNS)
        )
        if not rows:
            return
        bundles = {b.bundle_sku: [c.component_sku for c in b.components.all()] for b in
                   BundleMapping.objects.filter(is_active=True, bundle_sku__in={r["sku"] for r in rows})
                   .prefetch_related("components")}
        # (line, component SKU) → its newest adjustment; (line, None) → the line's newest of any SKU.
        latest: dict[tuple[int, str | None], dict] = {}
        for adj in (InventoryAdjustment.objects.filter(portal_return_line_id__in=[r["id"] for r in rows])
                    .order_by("created_at", "id").values("portal_return_line_id", "seller_sku", "status",
                                                         "last_error", "write_back_id")):
            latest[(adj["portal_return_line_id"], adj["seller_sku"])] = adj
            latest[(adj["portal_return_line_id"], None)] = adj
        for row in rows:
            if row["sku"] in bundles:
                state = {sku: latest.get((row["id"], sku)) for sku in bundles[row["sku"]]}
            else:
                state = {row["sku"]: latest.get((row["id"], None))}
            missing = [sku for sku, adj in state.items() if adj is None or adj["status"] != JobStatus.SUCCEEDED]
            if not missing:
                continue
            restocks = {sku: None if adj is None else {"status": adj["status"],
                                                       "last_error": (adj["last_error"] or "")[:2000]}
                        for sku, adj in state.items()}
            failing = next((state[sku] for sku in missing if state[sku] and state[sku]["write_back_id"]), None)
            graded_at = row[PR + "inspected_at"] or row[PR + "received_at"]
            what = ", ".join(missing) if missing != [row["sku"]] else row["sku"]
            yield portal_finding(
                self, row, prefix=PR, subject_kind=SubjectKind.PORTAL_RETURN_LINE, subject_id=row["id"],
                computed={"graded_sellable_at": graded_at, "latency_hours": latency, "not_restocked": missing,
                          "restock": restocks[missing[0]], "restocks": restocks},
                extra={"line": _line_side(row)},
                title=f"Order {row[PR + 'order_ref']}: {row['received_quantity']} × {row['sku']} sellable, "
                      f"not restocked ({what})" if what != row["sku"] else
                      f"Order {row[PR + 'order_ref']}: {row['received_quantity']} × {row['sku']} sellable, not restocked",
                fingerprint_values=[row["sku"], row["received_quantity"], graded_at, missing],
                write_back_id=failing["write_back_id"] if failing else None,
            )
