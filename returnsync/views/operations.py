"""Operations: bundle mappings (create, edit, delete, CSV import/export) and warehouse
mappings. Every write goes through a service; Finance may read bundles, not change them."""

from __future__ import annotations

from typing import Any, ClassVar

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from returnsync import filtersets, selectors, services, tables
from returnsync.forms import BundleMappingForm, CsvUploadForm, WarehouseMappingForm
from returnsync.models import BundleMapping, WarehouseMapping
from returnsync.roles import Role
from returnsync.views.base import FilteredTableView, RoleRequiredMixin, stream_csv
from returnsync.views.history import history_context

OPERATIONS_ONLY = frozenset({Role.OPERATIONS, Role.ADMIN})


class FormPageView(RoleRequiredMixin, TemplateView):
    """A page with one form whose valid data is handed to ``save``; a ValidationError
    from the service is shown on the form."""

    template_name = "operations/form.html"
    roles = OPERATIONS_ONLY
    title: ClassVar[str] = ""
    form_class: ClassVar[type]
    success_url_name: ClassVar[str]

    def get_object(self):
        return None

    def get_initial(self, obj) -> dict:
        return {}

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        obj = self.get_object()
        form = self.form_class(initial=self.get_initial(obj))
        return self.render_to_response(self.get_context_data(form=form, object=obj))

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        obj = self.get_object()
        form = self.form_class(request.POST)
        if form.is_valid():
            try:
                saved = self.save(form.cleaned_data, obj)
            except ValidationError as exc:
                form.add_error(None, exc)
            else:
                messages.success(request, f"Saved {saved}.")
                return HttpResponseRedirect(reverse(self.success_url_name))
        return self.render_to_response(self.get_context_data(form=form, object=obj), status=400)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(title=self.title, cancel_url=reverse(self.success_url_name))
        if getattr(self, "delete_url_name", None) and "pk" in self.kwargs:
            context["delete_url"] = reverse(self.delete_url_name, args=[self.kwargs["pk"]])
        return context


# --- Bundles -------------------------------------------------------------------------------


class BundleFormView(FormPageView):
    """New bundle: a SKU that exists already is refused with a link to edit it. Edit: the
    first Save shows what would change (components added, removed, with another quantity
    or share); only the confirmation saves, and only onto the version that was previewed."""

    nav_name = "bundle_list"
    roles = OPERATIONS_ONLY
    form_class = BundleMappingForm
    success_url_name = "bundle_list"
    delete_url_name = "bundle_delete"
    confirm_template_name = "operations/bundle_confirm.html"

    @property
    def title(self):  # type: ignore[override]
        return "Edit bundle" if "pk" in self.kwargs else "New bundle"

    def get_object(self):
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(
            BundleMapping.objects.prefetch_related("components"), pk=self.kwargs["pk"]
        )

    def get_initial(self, obj) -> dict:
        return BundleMappingForm.initial_for(obj) if obj else {"is_active": True}

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        obj = kwargs.get("object")
        if obj is not None:
            context.update(history_context(self.request, obj))
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        obj = self.get_object()
        form = self.form_class(request.POST)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form, object=obj), status=400)
        data = form.cleaned_data
        if obj is None:
            return self._create(form, data)
        if data["bundle_sku"].strip() != obj.bundle_sku:
            form.add_error("bundle_sku", "The bundle SKU cannot be changed: create a new bundle instead.")
            return self.render_to_response(self.get_context_data(form=form, object=obj), status=400)
        return self._update(form, data, obj)

    def _create(self, form, data) -> HttpResponse:
        try:
            bundle = services.bundle_mapping_create(
                bundle_sku=data["bundle_sku"], components=data["components"], name=data["name"],
                is_active=data["is_active"], actor=self.request.user,
            )
        except services.BundleExists as exc:
            context = self.get_context_data(form=form, object=None, existing_bundle=exc.bundle)
            return self.render_to_response(context, status=400)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.render_to_response(self.get_context_data(form=form, object=None), status=400)
        messages.success(self.request, f"Created bundle {bundle}.")
        return HttpResponseRedirect(reverse(self.success_url_name))

    def _update(self, form, data, obj) -> HttpResponse:
        changes = services.bundle_changes(bundle=obj, components=data["components"], name=data["name"],
                                          is_active=data["is_active"])
        if changes.empty:
            messages.info(self.request, f"Nothing to save: {obj} is already like this.")
            return HttpResponseRedirect(reverse(self.success_url_name))
        token = services.bundle_state_token(obj)
        confirmed = self.request.POST.get("confirm") == "yes"
        stale = confirmed and self.request.POST.get("version") != token
        if not confirmed or stale:
            try:  # shares that do not sum to 1 are refused now, not after the confirmation
                services.bundle_components_validate(
                    [services.ComponentSpec(c.component_sku.strip(), c.quantity, c.price_share)
                     for c in data["components"]])
            except ValidationError as exc:
                form.add_error(None, exc)
                return self.render_to_response(self.get_context_data(form=form, object=obj), status=400)
            context = self.get_context_data(form=form, object=obj, changes=changes, version=token, stale=stale)
            return TemplateResponse(self.request, self.confirm_template_name, context)
        try:
            services.bundle_mapping_update(bundle=obj, components=data["components"], name=data["name"],
                                           is_active=data["is_active"], actor=self.request.user)
        except ValidationError as exc:
            form.add_error(None, exc)
            return self.render_to_response(self.get_context_data(form=form, object=obj), status=400)
        messages.success(self.request, f"Saved {obj}: {changes_summary(changes)}.")
        return HttpResponseRedirect(reverse(self.success_url_name))


def changes_summary(changes: services.BundleChanges) -> str:
    counts = {kind: sum(1 for c in changes.components if c.kind == kind) for kind in ("added", "changed", "removed")}
    parts = [f"{n} component{'s' if n != 1 else ''} {kind}" for kind, n in counts.items() if n]
    parts += [f"{label.lower()} changed" for label, _, _ in changes.fields]
    return ", ".join(parts)


class BundleDeleteView(RoleRequiredMixin, TemplateView):
    nav_name = "bundle_list"
    roles = OPERATIONS_ONLY
    template_name = "operations/confirm_delete.html"

    def get_object(self) -> BundleMapping:
        return get_object_or_404(BundleMapping, pk=self.kwargs["pk"])

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            object=self.get_object(), what="bundle mapping", cancel_url=reverse("bundle_list")
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        bundle = self.get_object()
        services.bundle_mapping_delete(bundle=bundle, actor=request.user)
        messages.success(request, f"Deleted bundle {bundle.bundle_sku}.")
        return HttpResponseRedirect(reverse("bundle_list"))


class BundleImportView(RoleRequiredMixin, TemplateView):
    """Upload a bundle CSV: all or nothing, every bad row listed with its line number."""

    nav_name = "bundle_list"
    roles = OPERATIONS_ONLY
    template_name = "operations/bundle_import.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.setdefault("form", CsvUploadForm())
        context["header"] = ",".join(services.BUNDLE_CSV_HEADER)
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = CsvUploadForm(request.POST, request.FILES)
        if not form.is_valid():
            return self.render_to_response(self.get_context_data(form=form), status=400)
        result = services.bundle_mappings_import_csv(content=form.cleaned_data["file"].read(),
                                                     actor=request.user)
        if not result.ok:
            return self.render_to_response(
                self.get_context_data(form=form, result=result), status=400
            )
        messages.success(
            request,
            f"Imported bundle mappings: {result.created} created, {result.updated} updated, "
            f"{result.unchanged} unchanged.",
        )
        return HttpResponseRedirect(reverse("bundle_list"))


class BundleExportView(RoleRequiredMixin, TemplateView):
    """Every bundle mapping in the import's format (one row per component)."""

    nav_name = "bundle_list"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        return stream_csv(
            services.bundle_mappings_export_rows(),
            f"bundle-mappings-{timezone.localtime():%Y%m%d-%H%M}.csv",
        )


# --- Warehouse mappings --------------------------------------------------------------------


class WarehouseMappingListView(FilteredTableView):
    nav_name = "warehouse_list"
    title = "Warehouses"
    description = (
        "Each portal's warehouse/location codes and the TikTok warehouse whose stock they feed."
    )
    empty_message = "No warehouse mappings yet."
    selector = selectors.warehouse_mapping_list
    filterset_class = filtersets.WarehouseMappingFilterSet
    table_class = tables.WarehouseMappingTable
    template_name = "operations/warehouse_list.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["upload_url"] = next(
            filter(None, (selectors.url_or_none(name) for name in WAREHOUSE_UPLOAD_URL_NAMES)), None
        )
        return context


# The portal's receipt/grading CSV upload lives in its connector; linked once installed.
WAREHOUSE_UPLOAD_URL_NAMES = ("zigzag_upload", "zigzag_receipts_upload", "warehouse_upload")


class WarehouseMappingFormView(FormPageView):
    nav_name = "warehouse_list"
    roles = OPERATIONS_ONLY
    form_class = WarehouseMappingForm
    success_url_name = "warehouse_list"
    delete_url_name = "warehouse_delete"

    @property
    def title(self):  # type: ignore[override]
        return "Edit warehouse mapping" if "pk" in self.kwargs else "New warehouse mapping"

    def get_object(self):
        if "pk" not in self.kwargs:
            return None
        return get_object_or_404(WarehouseMapping, pk=self.kwargs["pk"])

    def get_initial(self, obj) -> dict:
        if obj is None:
            return {}
        return {
            "connection": obj.connection_id,
            "location_code": obj.location_code,
            "tiktok_warehouse_id": obj.tiktok_warehouse_id,
            "name": obj.name,
            "is_default": obj.is_default,
        }

    def save(self, data: dict, obj) -> WarehouseMapping:
        return services.warehouse_mapping_save(mapping=obj, actor=self.request.user, **data)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        if kwargs.get("object") is not None:
            context.update(history_context(self.request, kwargs["object"]))
        return context


class WarehouseMappingDeleteView(RoleRequiredMixin, TemplateView):
    nav_name = "warehouse_list"
    roles = OPERATIONS_ONLY
    template_name = "operations/confirm_delete.html"

    def get_object(self) -> WarehouseMapping:
        try:
            return WarehouseMapping.objects.select_related("connection").get(pk=self.kwargs["pk"])
        except WarehouseMapping.DoesNotExist:
            raise Http404("No such mapping") from None

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            object=self.get_object(), what="warehouse mapping", cancel_url=reverse("warehouse_list")
        )
        return context

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        mapping = self.get_object()
        services.warehouse_mapping_delete(mapping=mapping, actor=request.user)
        messages.success(request, f"Deleted warehouse mapping {mapping}.")
        return HttpResponseRedirect(reverse("warehouse_list"))
