"""Every list page, declared: what it reads, how it filters, what it shows."""

from __future__ import annotations

from typing import Any

from returnsync import filtersets, selectors, tables
from returnsync.roles import Role, has_any_role
from returnsync.views.base import FilteredTableView


class ReturnListView(FilteredTableView):
    nav_name = "return_list"
    title = "Returns"
    description = (
        "TikTok Shop returns with the portal's view of each. Search by order id, return "
        "id, tracking number or buyer zip."
    )
    empty_message = (
        "No TikTok returns yet: they appear here as soon as a webhook or a sync brings one in."
    )
    selector = selectors.return_list
    filterset_class = filtersets.ReturnFilterSet
    table_class = tables.ReturnTable
    PORTAL_ONLY_LISTED = 20

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        """With a search, portal records that match and are linked to no TikTok return
        (orphans) are listed too: they have no row in the TikTok list."""
        context = super().get_context_data(**kwargs)
        q = self.request.GET.get("q", "").strip()
        if q:
            context.update(extra_template="returns/includes/portal_only_results.html",
                           portal_only=list(selectors.portal_only_lookup(q=q)[:self.PORTAL_ONLY_LISTED]))
        return context


class RefundListView(FilteredTableView):
    nav_name = "refund_list"
    title = "Refunds"
    description = "Money given back, as each system reported it."
    empty_message = "No refunds recorded yet."
    selector = selectors.refund_list
    filterset_class = filtersets.RefundFilterSet
    table_class = tables.RefundTable


class BundleListView(FilteredTableView):
    nav_name = "bundle_list"
    title = "Bundles"
    description = (
        "Bundles sold as one SKU and returned one component at a time: each component's "
        "quantity and share of the bundle price."
    )
    empty_message = "No bundle mappings yet."
    selector = selectors.bundle_list
    filterset_class = filtersets.BundleFilterSet
    table_class = tables.BundleTable
    template_name = "operations/bundle_list.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context["can_edit_bundles"] = has_any_role(self.request.user, frozenset({Role.OPERATIONS}))
        return context


class InventoryAdjustmentListView(FilteredTableView):
    nav_name = "inventory_list"
    title = "Restock"
    description = "Stock going back on sale on TikTok after grading, per SKU and warehouse."
    empty_message = (
        "No stock adjustments yet: they are queued when a returned item is graded sellable."
    )
    selector = selectors.inventory_adjustment_list
    filterset_class = filtersets.InventoryAdjustmentFilterSet
    table_class = tables.InventoryAdjustmentTable


class WriteBackListView(FilteredTableView):
    nav_name = "writeback_list"
    title = "Write-backs"
    description = "Queued updates to TikTok and the portals, with their attempts and last error."
    empty_message = "No write-backs queued yet."
    selector = selectors.write_back_list
    filterset_class = filtersets.WriteBackFilterSet
    table_class = tables.WriteBackTable


class ConnectionListView(FilteredTableView):
    nav_name = "connection_list"
    title = "Connections"
    description = (
        "Accounts on each external system and their sync health. Credentials and webhook "
        "secrets are write-only and never shown."
    )
    empty_message = "No connections configured yet."
    selector = selectors.connection_list
    filterset_class = filtersets.ConnectionFilterSet
    table_class = tables.ConnectionTable


class InboundEventListView(FilteredTableView):
    nav_name = "inbound_list"
    title = "Inbound events"
    description = (
        "Every payload received (webhooks, poll pages), kept raw. Dead letters are events "
        "that could not be processed."
    )
    empty_message = "No inbound events yet."
    selector = selectors.inbound_event_list
    filterset_class = filtersets.InboundEventFilterSet
    table_class = tables.InboundEventTable


class ApiCallListView(FilteredTableView):
    nav_name = "apicall_list"
    title = "API calls"
    description = (
        "Every outbound call to an external system (no tokens, signatures or bodies are logged)."
    )
    empty_message = "No API calls logged yet."
    selector = selectors.api_call_list
    filterset_class = filtersets.ApiCallFilterSet
    table_class = tables.ApiCallTable
