"""The exception queue table: badges, SLA deadline, in-place claim/release buttons."""
from __future__ import annotations

import json

import django_tables2 as tables
from django.middleware.csrf import get_token
from django.urls import reverse
from django.utils.html import format_html

from exceptions_app.models import ExceptionCase
from exceptions_app.services import exception_may_act
from returnsync.roles import Role, has_any_role
from returnsync.tables import (
    BadgeColumn,
    BaseTable,
    CodeColumn,
    DateTimeColumn,
    DeadlineColumn,
    MoneyColumn,
)

ROW_VALS = json.dumps({"view": "row"})


class SlaColumn(DeadlineColumn):
    """The due time of an active case (highlighted when close or passed); closed ones say so."""

    def render(self, value, record):
        if not record.is_active:
            return format_html('<span class="muted">{}</span>', "closed")
        return super().render(value)


class ExceptionTable(BaseTable):
    select = tables.Column(
        "", empty_values=(), orderable=False, exclude_from_export=True, attrs={"td": {"class": "select"}}
    )
    id = tables.Column("#", linkify=True)
    title = tables.Column("Exception", linkify=True)
    type_code = CodeColumn("Type", visible=False)
    severity = BadgeColumn("Severity")
    status = BadgeColumn("Status")
    owner_role = tables.Column("Queue")
    assignee = tables.Column("Assignee", accessor="assignee__username", order_by=("assignee__username",))
    order_ref = CodeColumn("Order id")
    return_ref = CodeColumn("Return id")
    system = tables.Column("System", visible=False)
    amount = MoneyColumn("Amount")
    currency = tables.Column("Currency", visible=False)
    opened_at = DateTimeColumn("Opened", visible=False)
    due_at = SlaColumn("SLA due")
    actions = tables.Column("", empty_values=(), orderable=False, exclude_from_export=True)
    # Kept off the screen (the title says the type; the filters cover system and age) but exported.
    export_extra = ("type_code", "system", "opened_at", "currency")

    class Meta(BaseTable.Meta):
        model = ExceptionCase
        fields = ()
        empty_text = "No exceptions match."
        row_attrs = {
            "id": lambda record: f"exception-{record.pk}",
            "class": lambda record: "row-breached" if record.is_breached else "",
        }

    def render_select(self, record):
        return format_html(
            '<input type="checkbox" name="ids" value="{}" form="bulk-form" aria-label="Select exception {}">',
            record.pk, record.pk,
        )

    def render_assignee(self, value, record):
        return record.assignee.get_full_name() or value

    def render_actions(self, record):
        user = getattr(self.request, "user", None)
        if not record.is_active or user is None or not exception_may_act(exception=record, user=user):
            return ""
        url = None
        if record.assignee_id is None:
            url, label = reverse("exception_action", args=[record.pk, "claim"]), "Claim"
        elif record.assignee_id == user.pk or has_any_role(user, frozenset({Role.ADMIN})):
            url, label = reverse("exception_action", args=[record.pk, "release"]), "Release"
        if url is None:
            return ""
        return format_html(
            '<form method="post" action="{}" class="inline-form">'
            '<input type="hidden" name="csrfmiddlewaretoken" value="{}"><input type="hidden" name="view" value="row">'
            '<button type="submit" class="btn btn-small" hx-post="{}" hx-vals=\'{}\' hx-target="closest tr" hx-push-url="false" '
            'hx-swap="outerHTML">{}</button></form>',
            url, get_token(self.request), url, ROW_VALS, label,
        )
