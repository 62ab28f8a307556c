"""Forms for the exception actions and the per-type settings (input only: the rules are in
``exceptions_app.services``)."""
from __future__ import annotations

from django import forms

from exceptions_app.choices import ResolutionCode
from exceptions_app.rules import Rule
from exceptions_app.rules.base import threshold_limits
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


class TypeSettingForm(forms.Form):
    """One exception type's SLA, enabled flag and thresholds (blank = the default)."""

    is_enabled = forms.BooleanField(label="Enabled", required=False)
    sla_minutes = forms.IntegerField(label="SLA (minutes)", required=False, min_value=1, max_value=60 * 24 * 90)

    def __init__(self, *args, rule: Rule, **kwargs):
        self.rule = rule
        initial = {"is_enabled": rule.enabled, "sla_minutes": int(rule.effective_sla.total_seconds() // 60)}
        initial.update({f"t_{name}": value for name, value in rule.settings_thresholds.items()})
        super().__init__(*args, initial=initial, prefix=rule.code, **kwargs)
        for name, default in rule.thresholds.items():
            low, high = threshold_limits(rule, name)
            self.fields[f"t_{name}"] = forms.CharField(
                label=name, required=False, max_length=30,
                help_text=f"{rule.threshold_help.get(name, '')} Default: {default}; {low} to {high}.".strip(),
            )

    def default_sla_text(self) -> str:
        return duration_text(self.rule.sla)

    def threshold_fields(self):
        return [self[name] for name in self.fields if name.startswith("t_")]

    def thresholds(self) -> dict[str, str]:
        return {name.removeprefix("t_"): value for name, value in self.cleaned_data.items() if name.startswith("t_")}


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
