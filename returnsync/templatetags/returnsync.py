"""Template helpers: ``{% badge %}`` renders every status the same way, with its colour
from ``returnsync.choices.BADGE_COLORS`` and its label from the choices it belongs to."""

from __future__ import annotations

from django import template
from django.template.loader import render_to_string
from django.utils import timezone
from django.utils.safestring import SafeString
from django.utils.timesince import timeuntil

from returnsync import choices

register = template.Library()

BADGE_TEMPLATE = "includes/badge.html"

# Stored value → human label, for callers that only have the value. Earlier enums win
# where two share a value; pass the model's get_FOO_display() to be exact.
_LABELS: dict[str, str] = {}
for _enum in (
    choices.Stage,
    choices.Grade,
    choices.JobStatus,
    choices.RefundStatus,
    choices.InboundStatus,
    choices.SyncRunStatus,
    choices.System,
):
    for _value, _label in _enum.choices:
        _LABELS.setdefault(_value, str(_label))


def badge_context(value, label=None) -> dict:
    value = "" if value is None else str(value)
    return {
        "value": value,
        "label": label if label not in (None, "") else _LABELS.get(value, value or "—"),
        "color": choices.badge_color(value),
    }


def render_badge(value, label=None) -> SafeString:
    """The badge as HTML, for Python callers (table columns)."""
    return render_to_string(BADGE_TEMPLATE, badge_context(value, label))


@register.inclusion_tag(BADGE_TEMPLATE)
def badge(value, label=None):
    """``{% badge obj.status obj.get_status_display %}`` (the label is optional)."""
    return badge_context(value, label)


# Connection health has no enum of its own: it borrows the job statuses' values so its
# colours come from the same table as every other badge.
HEALTHY, FAILING, NEVER_SYNCED = choices.JobStatus.SUCCEEDED.value, choices.JobStatus.DEAD.value, ""


def connection_health(connection) -> tuple[str, str]:
    """(badge value, label) for a connection's sync health."""
    if connection.last_success_at is None and connection.last_error_at is None:
        return NEVER_SYNCED, "Never synced"
    return (HEALTHY, "Healthy") if connection.is_healthy else (FAILING, "Failing")


@register.simple_tag
def health_badge(connection) -> SafeString:
    return render_badge(*connection_health(connection))


@register.filter
def until(value) -> str:
    """How long until ``value``, to one unit: "in 5 hours", or "passed"."""
    if not value:
        return ""
    now = timezone.now()
    if value <= now:
        return "passed"
    return f"in {timeuntil(value, now, depth=1)}"


@register.simple_tag
def table_rows(table) -> SafeString:
    """The ``<tr>`` rows of a django-tables2 table's current page, built in Python.

    Same output as looping over ``row.items`` in the template (cells rendered by the
    columns, attributes from ``row.attrs`` and each column's ``td`` attrs, which may
    depend on the record), without the template engine's per-cell overhead: the queue
    pages render 50 rows × a dozen columns on every htmx swap.
    """
    from django.utils.html import conditional_escape

    parts: list[str] = []
    for row in table.paginated_rows:
        parts.append(f"<tr {row.attrs.as_html()}>")
        for column, cell in row.items():
            parts.append(f"<td {column.attrs['td'].as_html()}>{conditional_escape(cell)}</td>")
        parts.append("</tr>")
    return SafeString("".join(parts))


@register.filter
def get_item(mapping, key):
    """``mapping[key]`` in a template (None when absent or not a mapping)."""
    try:
        return mapping.get(key)
    except AttributeError:
        return None
