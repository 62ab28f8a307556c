"""Pages of the dashboard. Access is decided by ``RoleRequiredMixin`` from the same
NAVIGATION table that builds the menu, so what a person sees and what they may open agree."""

from returnsync.views.base import FilteredTableView, RoleRequiredMixin, nav_roles
from returnsync.views.connections import (
    ConnectionDetailView,
    ConnectionSecretsView,
    ConnectionTestView,
    ConnectionToggleView,
    InboundEventRetryView,
    SyncHealthView,
    WriteBackRetryView,
)
from returnsync.views.finance import FinanceReturnsView, FinanceView
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
from returnsync.views.operations import (
    BundleDeleteView,
    BundleExportView,
    BundleFormView,
    BundleImportView,
    WarehouseMappingDeleteView,
    WarehouseMappingFormView,
    WarehouseMappingListView,
)
from returnsync.views.returns import (
    PortalReturnDetailView,
    PortalReturnLinkView,
    ReturnDecideView,
    ReturnDetailView,
    ReturnLookupView,
    ReturnRejectReasonsView,
)

__all__ = [
    "ApiCallListView",
    "BundleDeleteView",
    "BundleExportView",
    "BundleFormView",
    "BundleImportView",
    "BundleListView",
    "ConnectionDetailView",
    "ConnectionListView",
    "ConnectionSecretsView",
    "ConnectionTestView",
    "ConnectionToggleView",
    "FilteredTableView",
    "FinanceReturnsView",
    "FinanceView",
    "HomeView",
    "InboundEventListView",
    "InboundEventRetryView",
    "InventoryAdjustmentListView",
    "PortalReturnDetailView",
    "PortalReturnLinkView",
    "RefundListView",
    "ReturnDecideView",
    "ReturnDetailView",
    "ReturnListView",
    "ReturnLookupView",
    "ReturnRejectReasonsView",
    "RoleRequiredMixin",
    "SyncHealthView",
    "WarehouseMappingDeleteView",
    "WarehouseMappingFormView",
    "WarehouseMappingListView",
    "WriteBackListView",
    "WriteBackRetryView",
    "nav_roles",
]
