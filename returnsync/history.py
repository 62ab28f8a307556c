"""Change history of what people configure: bundles, warehouse mappings, connections and
exception type settings (django-simple-history).

Every save through a service writes one historical row: who (the service's ``actor``, else
the request's user through simple-history's middleware, else the system), when, and the
values. A connection's credentials and webhook secret are never in its history (excluded
fields: the table has no column for them), nor are its health stamps. A bundle's row also
carries its components as they were, so one row is one whole version of the bundle.

Restoring a version is a new change made through the same service as an edit (checked the
same way), recorded with the reason "Restored the version of …".

Reads for the pages: ``history_entries`` (what changed between consecutive versions, in
words), one query per object.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import models
from simple_history.models import HistoricalRecords

# The longest history an object's page lists (the newest first).
HISTORY_LIMIT = 50


class TrackedHistory(HistoricalRecords):
    """A save that writes only fields the history leaves out (health stamps, a refreshed
    token, ``updated_at``) adds no row, unless it carries a change reason (a secret set by
    an admin is recorded as "Credentials changed: <names>", never with the values)."""

    UNTRACKED = frozenset({"updated_at"})

    def post_save(self, instance, created, using=None, **kwargs):
        update_fields = kwargs.get("update_fields")
        if not created and update_fields and not getattr(instance, "_change_reason", None):
            tracked = {f.name for f in self.fields_included(instance)} - self.UNTRACKED
            if not set(update_fields) & tracked:
                return
        super().post_save(instance, created, using=using, **kwargs)


class BundleHistoryBase(models.Model):
    """What a bundle's historical row adds: its components at that moment."""

    components = models.JSONField(blank=True, default=list,
                                  help_text="[[component SKU, quantity, price share], …] at that version.")

    class Meta:
        abstract = True


def bundle_components_snapshot(bundle) -> list[list]:
    """The stored components as history keeps them: [[sku, quantity, "share"], …] by SKU."""
    rows = bundle.components.order_by("component_sku").values_list("component_sku", "quantity", "price_share")
    return [[sku, quantity, f"{share.normalize():f}"] for sku, quantity, share in rows]


def bundle_history_fill(sender, instance, history_instance, **kwargs) -> None:
    """``pre_create_historical_record`` for bundles: the version carries its components (a
    deleted bundle's were snapshotted before the cascade removed them)."""
    snapshot = getattr(instance, "_history_components", None)
    history_instance.components = snapshot if snapshot is not None else bundle_components_snapshot(instance)


def record_as(instance, *, actor=None, reason: str = ""):
    """Name who makes the next save of ``instance`` and why (both optional)."""
    if actor is not None and getattr(actor, "is_authenticated", False):
        instance._history_user = actor
    if reason:
        instance._change_reason = reason[:100]
    return instance


# --- Reading it back ---------------------------------------------------------------------------


@dataclass(frozen=True)
class TrackedField:
    name: str
    label: str
    show: Callable[[Any], str] = lambda value: "—" if value in (None, "") else str(value)


@dataclass(frozen=True)
class Change:
    label: str
    before: str
    after: str


@dataclass
class HistoryEntry:
    record: Any  # the historical row (history_id, history_date, history_user, history_type)
    action: str  # "Created", "Changed", "Deleted"
    changes: list[Change] = field(default_factory=list)
    reason: str = ""

    @property
    def when(self) -> datetime:
        return self.record.history_date

    @property
    def who(self) -> str:
        user = self.record.history_user
        return user.get_username() if user is not None else "the system"

    @property
    def history_id(self) -> int:
        return self.record.history_id

    @property
    def restorable(self) -> bool:
        return self.action != "Deleted"


ACTIONS = {"+": "Created", "~": "Changed", "-": "Deleted"}


def yes_no(value) -> str:
    return "yes" if value else "no"


def history_entries(records: Iterable, fields: Sequence[TrackedField],
                    extra: Callable[[Any, Any], list[Change]] | None = None) -> list[HistoryEntry]:
    """Newest first: each version with what changed since the one before it (every value
    of a creation). ``records`` are one object's historical rows (any order); ``extra``
    adds changes the fields alone do not show (a bundle's components)."""
    rows = sorted(records, key=lambda r: (r.history_date, r.history_id))
    entries: list[HistoryEntry] = []
    previous = None
    for row in rows:
        changes = []
        for tracked in fields:
            after = getattr(row, tracked.name)
            before = getattr(previous, tracked.name) if previous is not None else None
            if previous is not None and isinstance(before, dict) and isinstance(after, dict):
                changes.extend(_dict_changes(tracked.label, before, after))  # per key, not the whole blob
                continue
            if previous is None or before != after:
                changes.append(Change(tracked.label, tracked.show(before) if previous is not None else "",
                                      tracked.show(after)))
        if extra is not None:
            changes.extend(extra(previous, row))
        entries.append(HistoryEntry(record=row, action=ACTIONS.get(row.history_type, row.history_type),
                                    changes=changes if row.history_type != "-" else [],
                                    reason=row.history_change_reason or ""))
        previous = row
    return entries[::-1]


def _shown(value) -> str:
    import json

    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def _dict_changes(label: str, before: dict, after: dict) -> list[Change]:
    return [Change(f"{label} · {key}", _shown(before.get(key)), _shown(after.get(key)) if key in after else "removed")
            for key in sorted(before.keys() | after.keys()) if before.get(key) != after.get(key)]


def restore_reason(record) -> str:
    from django.utils import timezone

    return f"Restored the version of {timezone.localtime(record.history_date):%Y-%m-%d %H:%M} (#{record.history_id})"
