"""Filters for every list page (django-filter).

Each has a ``q`` search box over the ids people paste, multiple-choice status filters,
and ``<fk>_id`` filters. Invalid values are ignored rather than failing the page.
"""

from __future__ import annotations

import django_filters as filters
from django import forms
from django.db.models import Q

from returnsync import selectors
from returnsync.choices import (
    InboundStatus,
    JobStatus,
    RefundStatus,
    Stage,
    System,
    WriteBackAction,
)
from returnsync.models import (
    ApiCall,
    BundleMapping,
    Connection,
    InboundEvent,
    InventoryAdjustment,
    MarketplaceReturn,
    Refund,
    WarehouseMapping,
    WriteBack,
)


def search_filter(placeholder: str) -> filters.CharFilter:
    return filters.CharFilter(
        method="filter_q",
        label="Search",
        widget=forms.TextInput(
            attrs={"type": "search", "placeholder": placeholder, "autocomplete": "off"}
        ),
    )


def multi_choice(choices, label: str, field_name: str = "status") -> filters.MultipleChoiceFilter:
    # distinct=False: these filter the model's own columns (no join can repeat a row), and
    # SELECT DISTINCT over every column, JSON included, is what made big queues slow.
    return filters.MultipleChoiceFilter(
        field_name=field_name, choices=choices, label=label, widget=forms.CheckboxSelectMultiple, distinct=False
    )


def connection_filter(*kinds: str, field_name: str = "connection") -> filters.ModelChoiceFilter:
    def queryset(request):
        qs = Connection.objects.order_by("kind", "name")
        return qs.filter(kind__in=kinds) if kinds else qs

    return filters.ModelChoiceFilter(
        field_name=field_name, queryset=queryset, label="Connection", empty_label="All connections"
    )


class ReturnFilterSet(filters.FilterSet):
    q = search_filter("Order id, return id, tracking or buyer zip")
    stage = multi_choice(Stage.choices, "Stage", field_name="stage")
    connection_id = connection_filter(System.TIKTOK_SHOP)

    class Meta:
        model = MarketplaceReturn
        fields = ()

    def filter_q(self, queryset, name, value):
        return queryset.filter(selectors.return_search_q(value))


class RefundFilterSet(filters.FilterSet):
    q = search_filter("Order id, return id or refund id")
    status = multi_choice(RefundStatus.choices, "Status")
    connection_id = connection_filter()

    class Meta:
        model = Refund
        fields = ()

    def filter_q(self, queryset, name, value):
        return queryset.filter(selectors.refund_search_q(value))


class BundleFilterSet(filters.FilterSet):
    q = search_filter("Bundle or component SKU")
    is_active = filters.BooleanFilter(
        label="Active",
        widget=forms.Select(
            choices=[("", "Active or not"), ("true", "Active"), ("false", "Inactive")]
        ),
    )

    class Meta:
        model = BundleMapping
        fields = ()

    def filter_q(self, queryset, name, value):
        value = value.strip()
        matching = BundleMapping.objects.filter(
            Q(bundle_sku__icontains=value) | Q(components__component_sku__icontains=value)
        ).values("pk")
        return queryset.filter(pk__in=matching)


class InventoryAdjustmentFilterSet(filters.FilterSet):
    q = search_filter("SKU or warehouse id")
    status = multi_choice(JobStatus.choices, "Status")

    class Meta:
        model = InventoryAdjustment
        fields = ()

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(seller_sku__icontains=value) | Q(sku_id=value) | Q(warehouse_id=value)
        )


class WriteBackFilterSet(filters.FilterSet):
    q = search_filter("Return id or order id")
    status = multi_choice(JobStatus.choices, "Status")
    action = multi_choice(WriteBackAction.choices, "Action", field_name="action")
    connection_id = connection_filter()

    class Meta:
        model = WriteBack
        fields = ()

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(marketplace_return__return_id=value)
            | Q(marketplace_return__order_ref=value)
            | Q(portal_return__external_id=value)
        )


class ConnectionFilterSet(filters.FilterSet):
    id = filters.NumberFilter(field_name="id", widget=forms.HiddenInput)
    kind = multi_choice(System.choices, "System", field_name="kind")
    is_enabled = filters.BooleanFilter(
        label="Enabled",
        widget=forms.Select(
            choices=[("", "Enabled or not"), ("true", "Enabled"), ("false", "Disabled")]
        ),
    )

    class Meta:
        model = Connection
        fields = ()


class InboundEventFilterSet(filters.FilterSet):
    q = search_filter("Dedupe key or subject (return/order id)")
    status = multi_choice(InboundStatus.choices, "Status")
    source = multi_choice(System.choices, "Source", field_name="source")
    connection_id = connection_filter()
    error = filters.CharFilter(
        field_name="error", lookup_expr="icontains", label="Error contains", max_length=200,
        widget=forms.TextInput(attrs={"placeholder": "e.g. names no return", "autocomplete": "off"}),
    )

    class Meta:
        model = InboundEvent
        fields = ()

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(dedupe_key__icontains=value) | Q(subject_ref__icontains=value))


class ApiCallFilterSet(filters.FilterSet):
    OUTCOMES = (("ok", "Succeeded"), ("failed", "Failed"))

    q = search_filter("Path or request id")
    connection_id = connection_filter()
    outcome = filters.ChoiceFilter(
        choices=OUTCOMES, method="filter_outcome", label="Outcome", empty_label="Any outcome"
    )

    class Meta:
        model = ApiCall
        fields = ()

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(Q(path__icontains=value) | Q(request_id=value))

    def filter_outcome(self, queryset, name, value):
        ok = selectors.api_call_ok_q()
        return queryset.filter(ok) if value == "ok" else queryset.exclude(ok)


class WarehouseMappingFilterSet(filters.FilterSet):
    q = search_filter("Location code or TikTok warehouse id")
    connection_id = connection_filter()

    class Meta:
        model = WarehouseMapping
        fields = ()

    def filter_q(self, queryset, name, value):
        value = value.strip()
        return queryset.filter(
            Q(location_code__icontains=value) | Q(tiktok_warehouse_id=value) | Q(name__icontains=value)
        )
