"""Change history pages: one object's versions (who, when, what changed) and, for an admin,
Restore (a new change through the object's own service, audited with its reason).

Each kind of object is one ``HistoryKind``; the exception engine declares its own (type
settings) the same way, so the core imports nothing of it."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.contrib import messages
from django.core.exceptions import ValidationError
from django.db import models
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import TemplateView, View

from returnsync import history, services
from returnsync.history import Change, TrackedField, yes_no
from returnsync.models import BundleMapping, Connection, WarehouseMapping
from returnsync.roles import Role, has_any_role
from returnsync.views.base import RoleRequiredMixin, nav_roles

ON_PAGE = 10  # versions listed on the object's own page (the history page lists them all)


@dataclass(frozen=True)
class HistoryKind:
    model: type[models.Model]
    label: str  # "bundle"
    history_url_name: str  # takes the object's pk (or, for settings, its key)
    restore_url_name: str  # takes a history_id
    fields: Callable[[list], tuple[TrackedField, ...]]  # from the records (FK names resolved once)
    restore: Callable[..., Any]  # (history_id=, actor=) -> the object
    page_url: Callable[[Any], str]  # the object's own page
    records: Callable[[Any], models.QuerySet] = lambda obj: type(obj).history.filter(id=obj.pk)
    key: Callable[[Any], Any] = lambda obj: obj.pk
    record_key: Callable[[Any], Any] = lambda record: record.id  # a version → its object's key
    lookup: Callable[[dict], Any] | None = None  # URL kwargs → the object (default: by pk)
    extra: Callable[[Any, Any], list[Change]] | None = None
    view_roles: frozenset[Role] = frozenset({Role.ADMIN})


def _json_text(value) -> str:
    return json.dumps(value, sort_keys=True) if value else "—"


def _bundle_fields(records) -> tuple[TrackedField, ...]:
    return (TrackedField("name", "Name"), TrackedField("is_active", "Active", yes_no))


def _bundle_components(previous, row) -> list[Change]:
    """Components added, removed, or with another quantity or share, between two versions."""
    before = {sku: (q, s) for sku, q, s in (previous.components if previous is not None else [])}
    after = {sku: (q, s) for sku, q, s in row.components}

    def text(value) -> str:
        return f"{value[0]} × share {value[1]}" if value else ""

    changes = [Change(f"Component {sku}", text(before.get(sku)) if previous is not None else "",
                      text(after.get(sku)) or "removed")
               for sku in sorted(before.keys() | after.keys()) if before.get(sku) != after.get(sku)]
    return changes


def _connection_names(records, attribute: str = "connection_id") -> dict[int, str]:
    ids = {getattr(r, attribute) for r in records}
    return {c.pk: str(c) for c in Connection.objects.filter(pk__in=ids)}


def _warehouse_fields(records) -> tuple[TrackedField, ...]:
    names = _connection_names(records)
    return (
        TrackedField("connection_id", "Connection", lambda pk: names.get(pk, f"connection {pk} (deleted)")),
        TrackedField("location_code", "Location code"),
        TrackedField("tiktok_warehouse_id", "TikTok warehouse id"),
        TrackedField("name", "Name"),
        TrackedField("is_default", "Default", yes_no),
    )


def _connection_fields(records) -> tuple[TrackedField, ...]:
    return (
        TrackedField("name", "Name"),
        TrackedField("base_url", "Base URL"),
        TrackedField("is_enabled", "Enabled", yes_no),
        TrackedField("is_sandbox", "Sandbox", yes_no),
        TrackedField("poll_interval_seconds", "Poll every (s)"),
        TrackedField("rate_limit_per_second", "Rate limit (/s)"),
        TrackedField("options", "Options", _json_text),
        TrackedField("webhook_slug", "Webhook URL segment"),
    )


KINDS: dict[type[models.Model], HistoryKind] = {}


def kind_register(kind: HistoryKind) -> HistoryKind:
    KINDS[kind.model] = kind
    return kind


BUNDLE = kind_register(HistoryKind(
    model=BundleMapping, label="bundle", history_url_name="bundle_history", restore_url_name="bundle_restore",
    fields=_bundle_fields, extra=_bundle_components, restore=services.bundle_mapping_restore,
    page_url=lambda obj: reverse("bundle_edit", args=[obj.pk]), view_roles=nav_roles("bundle_list"),
))
WAREHOUSE = kind_register(HistoryKind(
    model=WarehouseMapping, label="warehouse mapping", history_url_name="warehouse_history",
    restore_url_name="warehouse_restore", fields=_warehouse_fields, restore=services.warehouse_mapping_restore,
    page_url=lambda obj: reverse("warehouse_edit", args=[obj.pk]), view_roles=nav_roles("warehouse_list"),
))
CONNECTION = kind_register(HistoryKind(
    model=Connection, label="connection", history_url_name="connection_history",
    restore_url_name="connection_restore", fields=_connection_fields, restore=services.connection_restore,
    page_url=lambda obj: reverse("connection_detail", args=[obj.pk]),
))


def entries_for(kind: HistoryKind, obj, *, limit: int = history.HISTORY_LIMIT) -> list[history.HistoryEntry]:
    records = list(kind.records(obj).select_related("history_user").order_by("-history_date", "-history_id")
                   [:limit + 1])  # one more: the oldest listed still shows what it changed
    entries = history.history_entries(records, kind.fields(records), kind.extra)
    return entries[:limit]


def history_context(request: HttpRequest, obj, *, limit: int = ON_PAGE) -> dict[str, Any]:
    """What an object's page needs to show its last versions (``history/_history.html``)."""
    kind = KINDS[type(obj)]
    entries = entries_for(kind, obj, limit=limit)
    return {
        "history_entries": entries,
        "history_kind": kind,
        "history_url": reverse(kind.history_url_name, args=[kind.key(obj)]),
        "history_restore_url_name": kind.restore_url_name,
        "can_restore": has_any_role(request.user, frozenset({Role.ADMIN})),
        "history_next": request.get_full_path(),
    }


class HistoryView(RoleRequiredMixin, TemplateView):
    """Every version of one object, newest first."""

    template_name = "history/history.html"
    kind: HistoryKind | None = None
    nav_name = None
    roles = frozenset({Role.ADMIN})  # widened per kind in dispatch

    def dispatch(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        self.roles = self.kind.view_roles
        return super().dispatch(request, *args, **kwargs)

    def get_object(self):
        if self.kind.lookup is not None:
            obj = self.kind.lookup(self.kwargs)
        else:
            obj = self.kind.model.objects.filter(pk=self.kwargs["pk"]).first() if "pk" in self.kwargs else None
        if obj is None:
            raise Http404(f"No such {self.kind.label}")
        return obj

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        obj = self.get_object()
        context.update(history_context(self.request, obj, limit=history.HISTORY_LIMIT), object=obj,
                       page_url=self.kind.page_url(obj), full_page=True)
        return context


class HistoryRestoreView(RoleRequiredMixin, View):
    """POST: an admin puts an object back as it was in one version (a new, audited change)."""

    http_method_names = ("post",)
    kind: HistoryKind | None = None
    roles = frozenset({Role.ADMIN})

    def post(self, request: HttpRequest, history_id: int) -> HttpResponse:
        record = self.kind.model.history.filter(history_id=history_id).first()
        if record is None:
            raise Http404("No such version")
        try:
            obj = self.kind.restore(history_id=history_id, actor=request.user)
        except (services.ActionRefused, ValidationError) as exc:
            messages.error(request, f"Not restored: {' '.join(getattr(exc, 'messages', [str(exc)]))}")
            back = request.POST.get("next", "")
        else:
            messages.success(request, f"Restored {obj} to {history.restore_reason(record).removeprefix('Restored ')}.")
            back = request.POST.get("next", "")
        from django.utils.http import url_has_allowed_host_and_scheme

        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse(self.kind.history_url_name, args=[self.kind.record_key(record)])
        return HttpResponseRedirect(back)
