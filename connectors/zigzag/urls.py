from django.urls import path

from connectors.zigzag import views

urlpatterns = [
    path("receipts/upload/", views.CsvUploadView.as_view(), name="zigzag_csv_upload"),
    path("receipts/template.csv", views.CsvTemplateView.as_view(), name="zigzag_csv_template"),
]
