from django.urls import path

from exceptions_app import views

urlpatterns = [
    path("", views.ExceptionListView.as_view(), name="exception_list"),
    path("bulk/", views.ExceptionBulkView.as_view(), name="exception_bulk"),
    path("runbook/", views.RunbookView.as_view(), name="runbook"),
    path("service-levels/", views.ServiceLevelView.as_view(), name="service_levels"),
    path("settings/", views.ExceptionSettingsView.as_view(), name="exception_settings"),
    path("<int:pk>/", views.ExceptionDetailView.as_view(), name="exception_detail"),
    path("<int:pk>/<slug:action>/", views.ExceptionActionView.as_view(), name="exception_action"),
]
