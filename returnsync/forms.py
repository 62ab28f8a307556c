"""Forms of the dashboard pages. They parse and check input only; the writes are services."""

from __future__ import annotations

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


class ConnectionSecretsForm(forms.Form):
    """The connector's own credential fields (``Connector.credential_fields``), one input each,
    and the webhook secret. Write-only: every input starts empty and is never filled back;
    a blank input keeps what is stored. Secrets are password inputs."""

    PREFIX = "cred_"
    MAX_LENGTH = 4000

    webhook_secret = forms.CharField(
        required=False, max_length=MAX_LENGTH,
        widget=forms.PasswordInput(render_value=False, attrs={"autocomplete": "new-password"}),
        help_text="Leave empty to keep the stored secret.",
    )

    def __init__(self, *args, connection: Connection, **kwargs):
        from returnsync import registry

        super().__init__(*args, **kwargs)
        found = registry.connector_or_none(connection.kind)
        self.spec = found.credential_fields if found else ()
        stored = connection.credentials if isinstance(connection.credentials, dict) else {}
        fields = {}
        for spec in self.spec:
            state = "set: leave blank to keep it" if stored.get(spec.name) else "not set"
            attrs = {"data-credential": spec.name}
            widget = (forms.PasswordInput(render_value=False, attrs={**attrs, "autocomplete": "new-password"})
                      if spec.secret else forms.TextInput(attrs={**attrs, "autocomplete": "off"}))
            fields[self.PREFIX + spec.name] = forms.CharField(
                label=spec.label, required=False, max_length=self.MAX_LENGTH, widget=widget,
                help_text=" ".join(filter(None, [spec.help, f"Now {state}."])),
            )
        # The connector's fields first, the webhook secret last.
        self.fields = {**fields, "webhook_secret": self.fields["webhook_secret"]}
        self.other_keys = sorted(set(stored) - {spec.name for spec in self.spec})

    def credential_fields(self):
        return [self[name] for name in self.fields if name.startswith(self.PREFIX)]

    def credentials(self) -> dict[str, str]:
        """The values typed in (blank ones left out: they keep what is stored)."""
        return {name.removeprefix(self.PREFIX): value for name, value in self.cleaned_data.items()
                if name.startswith(self.PREFIX) and value}


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
