"""Forms of the dashboard pages. They parse and check input only; the writes are services."""

from __future__ import annotations

import json
from datetime import date
from decimal import Decimal, InvalidOperation

from django import forms

from returnsync.models import Connection
from returnsync.services import COMPONENT_QUANTITY_MAX, ComponentSpec


class BundleMappingForm(forms.Form):
    bundle_sku = forms.CharField(label="Bundle SKU", max_length=100)
    name = forms.CharField(max_length=200, required=False)
    is_active = forms.BooleanField(label="Active", required=False, initial=True)
    components = forms.CharField(
        label="Components",
        widget=forms.Textarea(attrs={"rows": 6, "placeholder": "SKU-A, 1, 0.6\nSKU-B, 2, 0.4"}),
        help_text="One per line: component SKU, quantity, price share. Shares must sum to 1.",
    )

    def clean_components(self) -> list[ComponentSpec]:
        specs = []
        for number, line in enumerate(self.cleaned_data["components"].splitlines(), start=1):
            if not line.strip():
                continue
            parts = [p.strip() for p in line.split(",")]
            if len(parts) != 3:
                raise forms.ValidationError(f"Line {number}: write SKU, quantity, price share.")
            try:
                if len(parts[1]) > 12 or len(parts[2]) > 30:
                    raise ValueError
                quantity = int(parts[1])
                share = Decimal(parts[2])
                if not share.is_finite():
                    raise ValueError
            except (ValueError, InvalidOperation):
                raise forms.ValidationError(
                    f"Line {number}: quantity must be a whole number and price share a number."
                ) from None
            if not 1 <= quantity <= COMPONENT_QUANTITY_MAX:
                raise forms.ValidationError(
                    f"Line {number}: quantity must be from 1 to {COMPONENT_QUANTITY_MAX:,}."
                )
            specs.append(ComponentSpec(parts[0], quantity, share))
        return specs

    @staticmethod
    def initial_for(bundle) -> dict:
        return {
            "bundle_sku": bundle.bundle_sku,
            "name": bundle.name,
            "is_active": bundle.is_active,
            "components": "\n".join(
                f"{c.component_sku}, {c.quantity}, {c.price_share.normalize():f}"
                for c in bundle.components.all()
            ),
        }


class CsvUploadForm(forms.Form):
    MAX_BYTES = 2 * 1024 * 1024

    file = forms.FileField(
        label="CSV file", widget=forms.ClearableFileInput(attrs={"accept": ".csv,text/csv"})
    )

    def clean_file(self):
        upload = self.cleaned_data["file"]
        if upload.size > self.MAX_BYTES:
            raise forms.ValidationError("The file is larger than 2 MB.")
        return upload


class WarehouseMappingForm(forms.Form):
    connection = forms.ModelChoiceField(
        queryset=Connection.objects.order_by("kind", "name"), empty_label=None
    )
    location_code = forms.CharField(
        max_length=64, help_text="The portal's warehouse/location code."
    )
    tiktok_warehouse_id = forms.CharField(label="TikTok warehouse id", max_length=64)
    name = forms.CharField(max_length=200, required=False)
    is_default = forms.BooleanField(
        required=False, help_text="Used when a return names no location (one per connection)."
    )


def _nested_deeper(value, levels: int) -> bool:
    """Does ``value`` nest lists/objects more than ``levels`` deep? (iterative: no recursion)"""
    stack = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict | list):
            if depth >= levels:
                return True
            stack.extend((child, depth + 1) for child in (item.values() if isinstance(item, dict) else item))
    return False


class ConnectionSecretsForm(forms.Form):
    """Write-only: fields start empty and an empty field keeps what is stored."""

    MAX_CHARS = 64 * 1024
    MAX_DEPTH = 4

    credentials = forms.CharField(
        required=False,
        label="Credentials to set (JSON object)",
        widget=forms.Textarea(
            attrs={
                "rows": 3,
                "autocomplete": "off",
                "placeholder": '{"app_key": "…", "app_secret": "…"}',
            }
        ),
        help_text="Keys given replace the stored ones; other stored keys are kept. Never shown back.",
    )
    webhook_secret = forms.CharField(
        required=False,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored secret.",
    )

    def clean_credentials(self) -> dict:
        text = self.cleaned_data["credentials"].strip()
        if not text:
            return {}
        if len(text) > self.MAX_CHARS:
            raise forms.ValidationError(f"Credentials are longer than {self.MAX_CHARS:,} characters.")
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise forms.ValidationError("Credentials must be a JSON object.") from None
        except RecursionError:
            raise forms.ValidationError("Credentials must be a flat JSON object of keys and values.") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise forms.ValidationError("Credentials must be a JSON object.")
        if any(_nested_deeper(v, self.MAX_DEPTH - 1) for v in value.values()):
            raise forms.ValidationError(
                f"Credentials must be a flat JSON object (values nested at most {self.MAX_DEPTH} levels)."
            )
        return value


# The reconciliation reads whole days either side of the chosen dates: a date at the edge of
# what Python's ``date`` holds (0001-01-01, 9999-12-31) would overflow. No statement is older
# than TikTok Shop or later than this century.
REPORT_FIRST_DAY = date(2000, 1, 1)
REPORT_LAST_DAY = date(2100, 12, 31)


def _report_date_validate(value: date | None) -> None:
    if value is not None and not REPORT_FIRST_DAY <= value <= REPORT_LAST_DAY:
        raise forms.ValidationError(
            f"Choose a date from {REPORT_FIRST_DAY:%Y-%m-%d} to {REPORT_LAST_DAY:%Y-%m-%d} "
            f"(got {value:%Y-%m-%d})."
        )


class ReconciliationForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            validators=[_report_date_validate])
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}),
                            validators=[_report_date_validate])
    connection = forms.ModelChoiceField(
        queryset=Connection.objects.none(),
        required=False,
        empty_label="All portal connections",
    )

    def __init__(self, *args, **kwargs):
        from returnsync import registry
        from returnsync.registry import ConnectorRole

        super().__init__(*args, **kwargs)
        self.fields["connection"].queryset = Connection.objects.filter(
            kind__in=registry.kinds(role=ConnectorRole.RETURNS_PORTAL)).order_by("kind", "name")
