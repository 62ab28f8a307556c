"""The rule contract: one small class per exception type.

A rule carries everything a person needs (title, owner, severity, SLA, what to check,
how to resolve: the runbook page is generated from it) and a set-based ``detect``:
database queries over the canonical tables that yield a ``Finding`` for each subject
where the condition holds *now*. The engine (``exceptions_app.detection``) turns
findings into cases: opens new ones, refreshes evidence on open ones, auto-resolves
open ones whose subject is no longer found (that is the clear-condition: the rule's
``detect`` no longer finds it; ``clears`` may add hysteresis), reopens auto-resolved
ones when the condition comes back.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, ClassVar

from exceptions_app.choices import Severity, SubjectKind
from returnsync.roles import Role


@dataclass(frozen=True)
class Scope:
    """Which subjects a pass looks at: all of them (``order_refs is None``: the full pass)
    or those of the TikTok orders a sync just changed (the incremental pass)."""

    order_refs: frozenset[str] | None = None

    @property
    def is_full(self) -> bool:
        return self.order_refs is None


@dataclass
class Finding:
    """The condition holds for one subject, with what both systems said."""

    subject_kind: SubjectKind
    subject_id: int
    title: str
    evidence: dict[str, Any]  # {"tiktok": {...}, "portal": {...}, "computed": {...}}: JSON-safe
    order_ref: str = ""
    return_ref: str = ""
    portal_ref: str = ""
    tracking_numbers: str = ""
    buyer_postal_code: str = ""
    system: str = ""
    connection_id: int | None = None
    marketplace_return_id: int | None = None
    portal_return_id: int | None = None
    write_back_id: int | None = None
    inbound_event_id: int | None = None
    amount: Decimal | None = None
    currency: str = ""
    # The evidence values whose change makes it a *new* problem (default: all evidence).
    fingerprint_values: Any = None
    occurred_at: datetime | None = None

    @property
    def subject_key(self) -> str:
        return f"{self.subject_kind}:{self.subject_id}"

    @property
    def fingerprint(self) -> str:
        values = self.evidence if self.fingerprint_values is None else self.fingerprint_values
        blob = json.dumps(values, sort_keys=True, default=str).encode()
        return hashlib.sha256(blob).hexdigest()[:32]


class Rule:
    """Subclass, fill in the class attributes and ``detect``; register with ``@register``."""

    code: ClassVar[str]
    title: ClassVar[str]
    owner: ClassVar[Role]
    severity: ClassVar[Severity] = Severity.MEDIUM
    sla: ClassVar[timedelta] = timedelta(hours=24)
    subject_kind: ClassVar[SubjectKind]
    # name → default value; admins override per type (ExceptionTypeSetting.thresholds).
    thresholds: ClassVar[dict[str, Any]] = {}
    # name → one line saying what the threshold means (shown beside it on the settings page).
    threshold_help: ClassVar[dict[str, str]] = {}
    # name → (lowest, highest) an admin may set; unnamed thresholds are bounded by their unit
    # (``threshold_limits``), so no value can overflow a pass and silently switch a rule off.
    threshold_bounds: ClassVar[dict[str, tuple[Any, Any]]] = {}
    description: ClassVar[str]
    what_to_check: ClassVar[str]
    how_to_resolve: ClassVar[str]
    # The failure from MISSION.md this rule catches (the runbook shows it).
    failure: ClassVar[str] = ""
    # Only the other system can clear it (TikTok must stop waiting): a person resolving it
    # while it still holds is told so, and the case stays until the condition clears.
    closes_only_when_cleared: ClassVar[bool] = False
    still_holds_message: ClassVar[str] = ""

    def __init__(self, *, thresholds: dict[str, Any] | None = None, sla: timedelta | None = None,
                 enabled: bool = True) -> None:
        self.settings_thresholds = {**self.thresholds, **(thresholds or {})}
        self.effective_sla = sla if sla is not None else self.sla
        self.enabled = enabled

    def threshold(self, name: str) -> Any:
        return self.settings_thresholds[name]

    def detect(self, *, scope: Scope, now: datetime) -> Iterable[Finding]:
        """Yield a Finding per subject where the condition holds now (set-based queries;
        restrict to ``scope.order_refs`` when the scope is not full)."""
        raise NotImplementedError

    def still_holds(self, *, case, now: datetime) -> Finding | None:
        """The finding for this case's subject if the condition still holds now (one
        detection over the case's order only)."""
        if not case.order_ref:
            return None
        for finding in self.detect(scope=Scope(order_refs=frozenset({case.order_ref})), now=now):
            if finding.subject_key == case.subject_key:
                return finding
        return None

    def clears(self, *, case, now: datetime) -> bool:
        """Called for an active case whose subject ``detect`` no longer finds: True (the
        default) auto-resolves it. Override for hysteresis."""
        return True


# Bounds by the unit a threshold's name ends with: a year of hours or minutes, percentages,
# money up to a million. Anything else: a whole number up to a million.
UNIT_BOUNDS: dict[str, tuple[Any, Any]] = {
    "_hours": (0, 24 * 366),
    "_minutes": (0, 60 * 24 * 366),
    "_days": (0, 366),
    "_percent": (Decimal("0"), Decimal("100")),
    "_amount": (Decimal("0"), Decimal("1000000")),
}
DEFAULT_BOUNDS: tuple[Any, Any] = (0, 1_000_000)
SLA_MAX_MINUTES = 60 * 24 * 90  # 90 days: longer is no service level


def threshold_limits(rule: type[Rule] | Rule, name: str) -> tuple[Any, Any]:
    """The (lowest, highest) value the threshold ``name`` of ``rule`` may take."""
    if name in rule.threshold_bounds:
        return rule.threshold_bounds[name]
    for suffix, bounds in UNIT_BOUNDS.items():
        if name.endswith(suffix):
            return bounds
    return DEFAULT_BOUNDS


REGISTRY: dict[str, type[Rule]] = {}


def register(rule: type[Rule]) -> type[Rule]:
    if rule.code in REGISTRY and REGISTRY[rule.code] is not rule:
        raise ValueError(f"exception type {rule.code!r} registered twice")
    for name in ("code", "title", "owner", "subject_kind", "description", "what_to_check", "how_to_resolve"):
        if not getattr(rule, name, None):
            raise TypeError(f"{rule.__name__} lacks {name}")
    REGISTRY[rule.code] = rule
    return rule
