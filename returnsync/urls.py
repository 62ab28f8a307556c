from django.contrib import admin
from django.contrib.auth import views as auth_views
from django.urls import include, path

from returnsync import views

urlpatterns = [
    path("", views.HomeView.as_view(), name="home"),
    path("returns/", views.ReturnListView.as_view(), name="return_list"),
    path("returns/<int:pk>/", views.ReturnDetailView.as_view(), name="return_detail"),
    path("refunds/", views.RefundListView.as_view(), name="refund_list"),
    path("bundles/", views.BundleListView.as_view(), name="bundle_list"),
    path("restock/", views.InventoryAdjustmentListView.as_view(), name="inventory_list"),
    path("write-backs/", views.WriteBackListView.as_view(), name="writeback_list"),
    path("connections/", views.ConnectionListView.as_view(), name="connection_list"),
    path("inbound/", views.InboundEventListView.as_view(), name="inbound_list"),
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
