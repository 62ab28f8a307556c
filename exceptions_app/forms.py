"""Forms for the exception actions and the per-type settings (input only: the rules are in
``exceptions_app.services``)."""
from __future__ import annotations

from decimal import Decimal

from django import forms

from exceptions_app.choices import ResolutionCode
from exceptions_app.rules import Rule
from exceptions_app.rules.base import SLA_MAX_MINUTES, threshold_limits
from exceptions_app.selectors import duration_text


class _ActionForm(forms.Form):
    """Several action forms share a page: each gets its own element ids."""

    prefix_id = "action"

    def __init__(self, *args, **kwargs):
        kwargs.setdefault("auto_id", f"{self.prefix_id}_%s")
        kwargs.setdefault("label_suffix", "")
        super().__init__(*args, **kwargs)


class ResolveForm(_ActionForm):
    prefix_id = "resolve"
    code = forms.ChoiceField(label="Resolution", choices=[("", "Choose…"), *ResolutionCode.choices])
    note = forms.CharField(label="Note", widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)
    resolved_amount = forms.DecimalField(
        label="Amount actually refunded", required=False, min_value=0, max_digits=12, decimal_places=2
    )
    confirm_over = forms.BooleanField(
        label="Record it although it is more than what remains to refund", required=False,
    )


class DismissForm(_ActionForm):
    prefix_id = "dismiss"
    reason = forms.CharField(label="Reason", widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)


class CommentForm(_ActionForm):
    prefix_id = "comment"
    note = forms.CharField(label="Comment", widget=forms.Textarea(attrs={"rows": 2}), max_length=4000)


class ReassignForm(_ActionForm):
    prefix_id = "reassign"
    to_user = forms.ModelChoiceField(label="Assign to", queryset=None, empty_label="Choose a person…")

    def __init__(self, *args, users, **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["to_user"].queryset = users


class BulkForm(forms.Form):
    ACTIONS = (("claim", "Claim"), ("release", "Release"), ("resolve", "Resolve"),
               ("retry", "Retry the failed step"), ("mirror", "Mirror into the portal"))

    action = forms.ChoiceField(choices=ACTIONS)
    ids = forms.TypedMultipleChoiceField(coerce=int, choices=(), error_messages={
        "required": "Tick at least one exception."})
    code = forms.ChoiceField(label="Resolution", required=False, choices=[("", "Resolution…"), *ResolutionCode.choices])
    note = forms.CharField(label="Note", required=False, max_length=4000)

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        # Any integer id is accepted here; the service says per id what happened.
        self.fields["ids"].valid_value = lambda value: str(value).isdigit() and len(str(value)) <= 18


# --- Exception settings: one page, one Save ------------------------------------------------

MINUTES_PER = {"minutes": 1, "hours": 60, "days": 60 * 24}
UNIT_CHOICES = (("minutes", "minutes"), ("hours", "hours"), ("days", "days"))
# Plain words for the thresholds' code names (the rule's own sentence is the help text).
THRESHOLD_LABELS = {
    "grace_minutes": "Grace period",
    "after_minutes": "Wait after the warehouse scan",
    "warn_hours": "Warn this long before the deadline",
    "lag_hours": "Refund allowed within",
    "latency_hours": "Stock update allowed within",
    "tolerance_amount": "Tolerated difference (amount)",
    "tolerance_percent": "Tolerated difference (% of the refund)",
}
DURATION_UNITS = {"_minutes": "minutes", "_hours": "hours"}  # a threshold's stored unit, from its name
MAX_DURATION_MINUTES = 60 * 24 * 365


def threshold_label(name: str) -> str:
    return THRESHOLD_LABELS.get(name) or name.replace("_", " ").capitalize()


def duration_parts(minutes: int | None) -> tuple[Decimal | None, str]:
    """The largest unit that shows ``minutes`` as a whole number: 2880 → (2, "days")."""
    if minutes is None:
        return None, "hours"
    for unit in ("days", "hours"):
        if minutes and minutes % MINUTES_PER[unit] == 0:
            return Decimal(minutes // MINUTES_PER[unit]), unit
    return Decimal(minutes), "minutes"


class DurationWidget(forms.MultiWidget):
    def __init__(self, attrs=None):
        super().__init__([forms.NumberInput(attrs={"min": "0", "step": "any", "inputmode": "decimal"}),
                          forms.Select(choices=UNIT_CHOICES)], attrs)

    def decompress(self, value):
        if value is None:
            return [None, "hours"]
        return list(duration_parts(int(value)))


class DurationField(forms.MultiValueField):
    """A number and a unit (minutes, hours, days) → whole ``base_unit``s, or None when blank."""

    widget = DurationWidget

    def __init__(self, *, base_unit: str = "minutes", min_minutes: int = 0,
                 max_minutes: int = MAX_DURATION_MINUTES, **kwargs):
        self.base_unit, self.min_minutes, self.max_minutes = base_unit, min_minutes, max_minutes
        fields = (forms.DecimalField(max_digits=9, decimal_places=2, min_value=0, required=False),
                  forms.ChoiceField(choices=UNIT_CHOICES, required=False))
        super().__init__(fields=fields, require_all_fields=False, required=False, **kwargs)

    def compress(self, data_list):
        if not data_list or data_list[0] in (None, ""):
            return None
        number, unit = data_list[0], data_list[1] or "hours"
        minutes = number * MINUTES_PER[unit]
        if minutes != minutes.to_integral_value():
            raise forms.ValidationError("Use whole minutes (e.g. 1.5 hours, not 1.51).")
        minutes = int(minutes)
        if minutes < self.min_minutes:
            raise forms.ValidationError(f"At least {self.min_minutes} minute{'s' if self.min_minutes != 1 else ''}.")
        if minutes > self.max_minutes:
            number, unit = duration_parts(self.max_minutes)
            raise forms.ValidationError(f"At most {number} {unit}.")
        per = MINUTES_PER[self.base_unit]
        if minutes % per:
            raise forms.ValidationError(f"Use whole {self.base_unit} (or a larger unit).")
        return minutes // per


class TypeSettingForm(forms.Form):
    """One exception type's enabled flag, SLA and thresholds, in plain words and in hours
    or days (blank = the default in code). Part of ``SettingsPageForm``."""

    is_enabled = forms.BooleanField(label="Raise this exception", required=False)
    sla = DurationField(label="Time to handle it (SLA)", min_minutes=1, max_minutes=SLA_MAX_MINUTES)

    def __init__(self, *args, rule: Rule, **kwargs):
        self.rule = rule
        initial = {"is_enabled": rule.enabled, "sla": int(rule.effective_sla.total_seconds() // 60)}
        super().__init__(*args, initial=initial, prefix=rule.code, **kwargs)
        self.fields["sla"].help_text = f"Default: {duration_text(rule.sla)}."
        for name, default in rule.thresholds.items():
            low, high = threshold_limits(rule, name)
            helptext = (f"{rule.threshold_help.get(name, '')} Default: {self._default_text(name, default)}; "
                        f"{self._default_text(name, low)} to {self._default_text(name, high)}.").strip()
            unit = next((u for suffix, u in DURATION_UNITS.items() if name.endswith(suffix)), None)
            if unit is not None and isinstance(default, int):
                self.fields[f"t_{name}"] = DurationField(label=threshold_label(name), base_unit=unit,
                                                         help_text=helptext)
                self.initial[f"t_{name}"] = int(rule.settings_thresholds[name]) * MINUTES_PER[unit]
            else:
                self.fields[f"t_{name}"] = forms.CharField(label=threshold_label(name), required=False,
                                                           max_length=50, help_text=helptext)
                self.initial[f"t_{name}"] = rule.settings_thresholds[name]

    @staticmethod
    def _default_text(name: str, default) -> str:
        unit = next((u for suffix, u in DURATION_UNITS.items() if name.endswith(suffix)), None)
        if unit is None or not isinstance(default, int):
            return str(default)
        number, shown = duration_parts(default * MINUTES_PER[unit])
        return f"{number} {shown}"

    def clean(self):
        from exceptions_app.services import ExceptionActionError, _coerce_threshold

        cleaned = super().clean()
        for name, default in self.rule.thresholds.items():
            value = cleaned.get(f"t_{name}")
            if value in (None, ""):
                continue
            try:
                _coerce_threshold(name, default, value, threshold_limits(self.rule, name))
            except ExceptionActionError as refused:
                self.add_error(f"t_{name}", str(refused) if isinstance(self.fields[f"t_{name}"], DurationField)
                               or "out of range" in str(refused) else f"Not a valid value: write something like {default}.")
        return cleaned

    def threshold_fields(self):
        return [self[name] for name in self.fields if name.startswith("t_")]

    def values(self) -> dict:
        """What ``exception_settings_update`` takes."""
        return {
            "is_enabled": self.cleaned_data["is_enabled"],
            "sla_minutes": self.cleaned_data["sla"],
            "thresholds": {name.removeprefix("t_"): value for name, value in self.cleaned_data.items()
                           if name.startswith("t_")},
        }


class SettingsPageForm:
    """Every type's form, checked together: one Save stores all of them or none. A type is
    taken from the post only when its marker (``<code>-shown``) came with it: a post that
    leaves a type out leaves it as it is (an absent checkbox would otherwise disable it)."""

    MARKER = "shown"

    def __init__(self, rules_: list[Rule], data=None):
        self.forms = [TypeSettingForm(data if data is not None and f"{rule.code}-{self.MARKER}" in data else None,
                                      rule=rule) for rule in rules_]

    @property
    def posted(self) -> list[TypeSettingForm]:
        return [form for form in self.forms if form.is_bound]

    def is_valid(self) -> bool:
        return all([form.is_valid() for form in self.posted])  # every form checked: all errors shown

    @property
    def invalid(self) -> list[TypeSettingForm]:
        return [form for form in self.forms if form.errors]

    def changes(self) -> dict[str, dict]:
        return {form.rule.code: form.values() for form in self.posted}


class ServiceLevelForm(forms.Form):
    """The service-level page's period (the finance pages' rule: two weeks by default, at
    most a year), TikTok shop and portal."""

    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    shop = forms.ModelChoiceField(queryset=None, required=False, empty_label="All TikTok shops")
    connection = forms.ModelChoiceField(queryset=None, required=False, empty_label="All portals")

    def __init__(self, *args, **kwargs):
        from returnsync import registry
        from returnsync.models import Connection
        from returnsync.registry import ConnectorRole

        super().__init__(*args, **kwargs)
        for name, role in (("shop", ConnectorRole.MARKETPLACE), ("connection", ConnectorRole.RETURNS_PORTAL)):
            self.fields[name].queryset = Connection.objects.filter(
                kind__in=registry.kinds(role=role)).order_by("kind", "name")
