"""Filters for the exception queue."""
from __future__ import annotations

from datetime import timedelta

import django_filters as filters
from django import forms
from django.db.models import Q
from django.utils import timezone

from exceptions_app import selectors
from exceptions_app.choices import ExceptionStatus, Severity
from exceptions_app.models import ExceptionCase
from exceptions_app.rules import REGISTRY
from returnsync.choices import System
from returnsync.filtersets import multi_choice, search_filter
from returnsync.roles import Role, user_roles

ME, UNASSIGNED = "me", "unassigned"
AGES = (("1h", "Opened in the last hour"), ("24h", "Opened today (24 h)"), ("72h", "Opened in 3 days"),
        ("older", "Older than 3 days"))
AGE_HOURS = {"1h": 1, "24h": 24, "72h": 72}


def type_choices():
    return [(code, rule.title) for code, rule in REGISTRY.items()]


def default_roles(user) -> list[str]:
    """A person lands on their own role's queue; an admin on everything."""
    held = user_roles(user)
    if Role.ADMIN in held:
        return []
    return [role.value for role in Role if role in held and role != Role.ADMIN]


class ExceptionFilterSet(filters.FilterSet):
    q = search_filter("Order id, return id, tracking or zip")
    owner_role = multi_choice([(r.value, r.label) for r in Role if r != Role.ADMIN], "Queue", field_name="owner_role")
    status = multi_choice(ExceptionStatus.choices, "Status")
    type_code = multi_choice(type_choices(), "Type", field_name="type_code")
    severity = multi_choice(Severity.choices, "Severity", field_name="severity")
    assignee = filters.CharFilter(method="filter_assignee", label="Assignee", widget=forms.Select(choices=[
        ("", "Anyone"), (ME, "Me"), (UNASSIGNED, "Unassigned")]))
    sla = filters.ChoiceFilter(choices=selectors.SlaState.choices, method="filter_sla", label="SLA",
                               empty_label="Any SLA state")
    age = filters.ChoiceFilter(choices=AGES, method="filter_age", label="Age", empty_label="Any age")
    system = multi_choice(System.choices, "System", field_name="system")

    class Meta:
        model = ExceptionCase
        fields = ()

    def __init__(self, data=None, *args, request=None, **kwargs):
        # Bookmarkable defaults: an untouched queue shows the user's own role, active cases.
        if data is not None and request is not None:
            data = data.copy()
            if "owner_role" not in data and default_roles(request.user):
                data.setlist("owner_role", default_roles(request.user))
            if "status" not in data:
                data.setlist("status", list(ExceptionStatus.active()))
        super().__init__(data, *args, request=request, **kwargs)

    def filter_q(self, queryset, name, value):
        return queryset.filter(selectors.exception_search_q(value))

    def filter_assignee(self, queryset, name, value):
        if value == ME:
            return queryset.filter(assignee=self.request.user)
        if value == UNASSIGNED:
            return queryset.filter(assignee__isnull=True)
        if value.isdigit():
            if int(value) > 2**63 - 1:  # beyond any id the database can hold
                return queryset.none()
            return queryset.filter(assignee_id=int(value))
        return queryset

    def filter_sla(self, queryset, name, value):
        return queryset.filter(selectors.sla_state_q(value))

    def filter_age(self, queryset, name, value):
        now = timezone.now()
        if value == "older":
            return queryset.filter(opened_at__lt=now - timedelta(hours=72))
        return queryset.filter(Q(opened_at__gte=now - timedelta(hours=AGE_HOURS[value])))
