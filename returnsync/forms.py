"""Forms of the dashboard pages. They parse and check input only; the writes are services."""

from __future__ import annotations

import json
from decimal import Decimal, InvalidOperation

from django import forms

from returnsync.models import Connection
from returnsync.services import ComponentSpec


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
                quantity = int(parts[1])
                share = Decimal(parts[2])
            except (ValueError, InvalidOperation):
                raise forms.ValidationError(
                    f"Line {number}: quantity must be a whole number and price share a number."
                ) from None
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


class ConnectionSecretsForm(forms.Form):
    """Write-only: fields start empty and an empty field keeps what is stored."""

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
        try:
            value = json.loads(text)
        except json.JSONDecodeError:
            raise forms.ValidationError("Credentials must be a JSON object.") from None
        if not isinstance(value, dict) or not all(isinstance(k, str) for k in value):
            raise forms.ValidationError("Credentials must be a JSON object.")
        return value


class ReconciliationForm(forms.Form):
    since = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
    until = forms.DateField(required=False, widget=forms.DateInput(attrs={"type": "date"}))
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
