"""The exception types. Importing this package registers every rule.

``rules()`` gives the configured instances (admin overrides from
``ExceptionTypeSetting`` applied over the defaults in code); ``rule_class(code)`` one class.
"""
from __future__ import annotations

from datetime import timedelta

from exceptions_app.rules import finance, operations, returns, sync  # noqa: F401 — registers the rules
from exceptions_app.rules.base import REGISTRY, Finding, Rule, Scope, register

__all__ = ["REGISTRY", "Finding", "Rule", "Scope", "register", "rule_class", "rule_for", "rules"]


def rule_class(code: str) -> type[Rule]:
    return REGISTRY[code]


def _configured(cls: type[Rule], setting) -> Rule:
    if setting is None:
        return cls()
    sla = timedelta(minutes=setting.sla_minutes) if setting.sla_minutes else None
    thresholds = {k: v for k, v in (setting.thresholds or {}).items() if k in cls.thresholds}
    return cls(thresholds=thresholds, sla=sla, enabled=setting.is_enabled)


def rules(*, include_disabled: bool = False) -> list[Rule]:
    """Every rule, configured, in registry order (one query)."""
    from exceptions_app.models import ExceptionTypeSetting

    settings = {s.type_code: s for s in ExceptionTypeSetting.objects.all()}
    configured = [_configured(cls, settings.get(code)) for code, cls in REGISTRY.items()]
    return [r for r in configured if include_disabled or r.enabled]


def rule_for(code: str) -> Rule:
    from exceptions_app.models import ExceptionTypeSetting

    return _configured(REGISTRY[code], ExceptionTypeSetting.objects.filter(type_code=code).first())
