"""Pages of the dashboard. Access is decided by ``RoleRequiredMixin`` from the same
NAVIGATION table that builds the menu, so what a person sees and what they may open agree."""

from returnsync.views.base import FilteredTableView, RoleRequiredMixin, nav_roles
from returnsync.views.home import HomeView
from returnsync.views.lists import (
    ApiCallListView,
    BundleListView,
    ConnectionListView,
    InboundEventListView,
    InventoryAdjustmentListView,
    RefundListView,
    ReturnListView,
    WriteBackListView,
)
from returnsync.views.returns import ReturnDetailView

__all__ = [
    "ApiCallListView",
    "BundleListView",
    "ConnectionListView",
    "FilteredTableView",
    "HomeView",
    "InboundEventListView",
    "InventoryAdjustmentListView",
    "RefundListView",
    "ReturnDetailView",
    "ReturnListView",
    "RoleRequiredMixin",
    "WriteBackListView",
    "nav_roles",
]
