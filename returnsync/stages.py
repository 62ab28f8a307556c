"""Raw status → canonical stage.

Raw statuses are stored as they came; the stage is derived here, from the status table
each connector registers (``Connector.status_table``, kept in the connector's
``mapping.py``). Lookups are lenient (case, spaces, dashes and a trailing ``ED`` /
``LED``, as in TikTok's reject and cancel spellings, are ignored) because real APIs are
loose with enum spellings. An unknown status maps to ``Stage.UNMAPPED`` rather than
failing: the row is still stored and the badge shows someone has a table to extend.

A connection may override or add entries with
``options["status_map"] = {"<raw status>": "<stage>"}``.
"""
from __future__ import annotations

import re
from collections.abc import Mapping

from returnsync import registry
from returnsync.choices import Stage

_SEPARATORS = re.compile(r"[\s\-]+")


def normalise(raw_status: str) -> str:
    return _SEPARATORS.sub("_", str(raw_status).strip()).upper()


def tables() -> dict[str, Mapping[str, Stage]]:
    """Every installed system's status table, by system."""
    return {c.kind: c.status_table for c in registry.connectors() if c.status_table}


def table_lookup(table: Mapping[str, Stage], raw_status: str,
                 overrides: Mapping[str, str] | None = None) -> Stage:
    """The stage of ``raw_status`` in ``table`` (``overrides`` first), or UNMAPPED."""
    key = normalise(raw_status)
    if overrides:
        for raw, stage in overrides.items():
            if normalise(raw) == key and stage in Stage.values:
                return Stage(stage)
    if key in table:
        return table[key]
    for suffix in ("ED", "LED"):  # REQUEST_REJECTED → REQUEST_REJECT, REQUEST_CANCELLED → REQUEST_CANCEL
        if key.endswith(suffix) and key[: -len(suffix)] in table:
            return table[key[: -len(suffix)]]
    return Stage.UNMAPPED


def stage_for(system: str, raw_status: str, overrides: Mapping[str, str] | None = None) -> Stage:
    """The canonical stage of ``raw_status`` in ``system``'s table (UNMAPPED for a system
    with no table)."""
    found = registry.connector_or_none(system)
    return table_lookup(found.status_table if found else {}, raw_status, overrides)


def connection_stage(connection, raw_status: str) -> Stage:
    """The stage of a raw status for this connection: its own overrides first, then its system's table."""
    return stage_for(connection.kind, raw_status, (connection.options or {}).get("status_map"))
