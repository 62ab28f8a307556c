"""ZigZag pages: the warehouse receipt/grading CSV upload and its template."""
from __future__ import annotations

from django.http import HttpResponse
from django.views.generic import TemplateView, View

from connectors.zigzag.csv_import import MAX_BYTES, CsvFileError, csv_import, template_csv
from connectors.zigzag.forms import CsvUploadForm
from returnsync.views.base import RoleRequiredMixin


class CsvUploadView(RoleRequiredMixin, TemplateView):
    nav_name = "zigzag_csv_upload"
    template_name = "zigzag/csv_upload.html"

    def get_context_data(self, **kwargs):
        context = super().get_context_data(**kwargs)
        context.setdefault("form", CsvUploadForm())
        return context

    def post(self, request, *args, **kwargs):
        form = CsvUploadForm(request.POST, request.FILES)
        result = None
        if form.is_valid():
            upload = form.cleaned_data["file"]
            try:
                result = csv_import(connection=form.cleaned_data["connection"], content=upload.read(MAX_BYTES + 1),
                                    filename=upload.name)
            except CsvFileError as exc:
                form.add_error("file", str(exc))
        status = 200 if result is not None else 400
        return self.render_to_response(self.get_context_data(form=form, result=result), status=status)


class CsvTemplateView(RoleRequiredMixin, View):
    nav_name = "zigzag_csv_upload"

    def get(self, request, *args, **kwargs):
        response = HttpResponse(template_csv(), content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="zigzag-receipts-template.csv"'
        return response
