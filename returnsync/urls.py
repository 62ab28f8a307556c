from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from returnsync import views
from returnsync.views.health import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("", views.HomeView.as_view(), name="home"),
    path("returns/", views.ReturnListView.as_view(), name="return_list"),
    path("returns/lookup/", views.ReturnLookupView.as_view(), name="return_lookup"),
    path("returns/<int:pk>/", views.ReturnDetailView.as_view(), name="return_detail"),
    path("returns/<int:pk>/decide/", views.ReturnDecideView.as_view(), name="return_decide"),
    path("returns/portal/<int:pk>/", views.PortalReturnDetailView.as_view(), name="portal_return_detail"),
    path("returns/portal/<int:pk>/link/", views.PortalReturnLinkView.as_view(), name="portal_return_link"),
    path("returns/<int:pk>/reject-reasons/", views.ReturnRejectReasonsView.as_view(), name="return_reject_reasons"),
    path("refunds/", views.RefundListView.as_view(), name="refund_list"),
    path("finance/", views.FinanceView.as_view(), name="finance"),
    path("finance/returns/", views.FinanceReturnsView.as_view(), name="finance_returns"),
    path("bundles/", views.BundleListView.as_view(), name="bundle_list"),
    path("bundles/new/", views.BundleFormView.as_view(), name="bundle_create"),
    path("bundles/<int:pk>/edit/", views.BundleFormView.as_view(), name="bundle_edit"),
    path("bundles/<int:pk>/delete/", views.BundleDeleteView.as_view(), name="bundle_delete"),
    path("bundles/import/", views.BundleImportView.as_view(), name="bundle_import"),
    path("bundles/export/", views.BundleExportView.as_view(), name="bundle_export"),
    path("warehouses/", views.WarehouseMappingListView.as_view(), name="warehouse_list"),
    path("warehouses/new/", views.WarehouseMappingFormView.as_view(), name="warehouse_create"),
    path("warehouses/<int:pk>/edit/", views.WarehouseMappingFormView.as_view(), name="warehouse_edit"),
    path("warehouses/<int:pk>/delete/", views.WarehouseMappingDeleteView.as_view(), name="warehouse_delete"),
    path("restock/", views.InventoryAdjustmentListView.as_view(), name="inventory_list"),
    path("write-backs/", views.WriteBackListView.as_view(), name="writeback_list"),
    path("connections/", views.ConnectionListView.as_view(), name="connection_list"),
    path("connections/<int:pk>/", views.ConnectionDetailView.as_view(), name="connection_detail"),
    path("connections/<int:pk>/test/", views.ConnectionTestView.as_view(), name="connection_test"),
    path("connections/<int:pk>/toggle/", views.ConnectionToggleView.as_view(), name="connection_toggle"),
    path("connections/<int:pk>/secrets/", views.ConnectionSecretsView.as_view(), name="connection_secrets"),
    path("sync-health/", views.SyncHealthView.as_view(), name="sync_health"),
    path("inbound/", views.InboundEventListView.as_view(), name="inbound_list"),
    path("inbound/<int:pk>/retry/", views.InboundEventRetryView.as_view(), name="inbound_retry"),
    path("write-backs/<int:pk>/retry/", views.WriteBackRetryView.as_view(), name="writeback_retry"),
    path("api-calls/", views.ApiCallListView.as_view(), name="apicall_list"),
    path("exceptions/", include("exceptions_app.urls")),
    path(
        "accounts/login/",
        auth_views.LoginView.as_view(redirect_authenticated_user=True),
        name="login",
    ),
    path("accounts/logout/", auth_views.LogoutView.as_view(), name="logout"),
    path("admin/", admin.site.urls),
    # Webhook receivers (and, when SANDBOX_ENABLED, the sandboxes): no login, own auth.
    path("", include("connectors.urls")),
]
