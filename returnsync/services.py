"""Writes to the core domain. Keyword-only, typed, named ``<entity>_<verb>``."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal

from django.core.exceptions import ValidationError
from django.db import transaction

from returnsync.models import BundleComponent, BundleMapping, Connection


def connection_set_secrets(
    *, connection: Connection, credentials: dict | None = None, webhook_secret: str | None = None
) -> Connection:
    """Replace a connection's secrets. ``None`` or empty keeps what is stored: secrets are
    write-only, so a form left blank must never wipe them."""
    fields = []
    if credentials:
        connection.credentials = {**(connection.credentials or {}), **credentials}
        fields.append("credentials")
    if webhook_secret:
        connection.webhook_secret = webhook_secret
        fields.append("webhook_secret")
    if fields:
        connection.save(update_fields=[*fields, "updated_at"])
    return connection


@dataclass(frozen=True)
class ComponentSpec:
    component_sku: str
    quantity: int
    price_share: Decimal


SHARE_TOTAL = Decimal("1")
SHARE_DECIMAL_PLACES = 6  # BundleComponent.price_share stores six: validate what will be stored


def bundle_components_validate(components: list[ComponentSpec]) -> None:
    """A bundle needs at least one component, no SKU twice, and shares summing to exactly 1."""
    if not components:
        raise ValidationError("A bundle needs at least one component.")
    skus = [c.component_sku for c in components]
    if any(not sku or sku != sku.strip() for sku in skus):
        raise ValidationError("Component SKUs must be non-blank, with no leading or trailing spaces.")
    duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
    if duplicates:
        raise ValidationError(f"Component listed twice: {', '.join(duplicates)}.")
    for component in components:
        if component.quantity < 1:
            raise ValidationError(f"{component.component_sku}: quantity must be at least 1.")
        if not Decimal("0") < component.price_share <= SHARE_TOTAL:
            raise ValidationError(f"{component.component_sku}: price share must be above 0 and at most 1.")
        if component.price_share.as_tuple().exponent < -SHARE_DECIMAL_PLACES:
            raise ValidationError(
                f"{component.component_sku}: price share has more than {SHARE_DECIMAL_PLACES} decimal places."
            )
    total = sum((c.price_share for c in components), Decimal("0"))
    if total != SHARE_TOTAL:
        raise ValidationError(f"Price shares must sum to 1 (they sum to {total.normalize()}).")


@transaction.atomic
def bundle_mapping_save(
    *, bundle_sku: str, components: list[ComponentSpec], name: str = "", is_active: bool = True
) -> BundleMapping:
    """Create or replace a bundle mapping and its components, all or nothing."""
    bundle_sku = bundle_sku.strip()
    components = [
        ComponentSpec(c.component_sku.strip(), c.quantity, Decimal(c.price_share)) for c in components
    ]
    if not bundle_sku:
        raise ValidationError("Bundle SKU is required.")
    bundle_components_validate(components)
    bundle, _ = BundleMapping.objects.update_or_create(
        bundle_sku=bundle_sku, defaults={"name": name, "is_active": is_active}
    )
    bundle.components.all().delete()
    BundleComponent.objects.bulk_create(
        BundleComponent(
            bundle=bundle, component_sku=c.component_sku, quantity=c.quantity, price_share=c.price_share
        )
        for c in components
    )
    return bundle


def portal_return_partial_refund_refresh(*, portal_return) -> "PartialRefund | None":
    """Recompute the partial-refund flag of a received portal return and store it.

    Flags (``partial_refund_amount`` set, ``partial_refund_detail`` filled) when an item
    came back short or failed grading; clears both when a later event makes the return
    whole again. Not received yet → nothing to judge, the flag is cleared. Records the
    first flagging, and every change of amount, on the return's timeline (deduplicated,
    so replays add nothing). Returns the computation when flagged, else None.
    """
    from returnsync.choices import System, TimelineKind
    from returnsync.money import RECEIVED_STAGES, partial_refund_compute
    from returnsync.timeline import timeline_record

    received = portal_return.received_at is not None or portal_return.stage in RECEIVED_STAGES
    computed = partial_refund_compute(portal_return=portal_return) if received else None
    flagged = computed if computed is not None and computed.is_partial else None
    amount = flagged.refund_amount if flagged else None
    detail = flagged.as_json() if flagged else {}
    if amount != portal_return.partial_refund_amount or detail != (portal_return.partial_refund_detail or {}):
        portal_return.partial_refund_amount = amount
        portal_return.partial_refund_detail = detail
        portal_return.save(update_fields=["partial_refund_amount", "partial_refund_detail", "updated_at"])
        if flagged is not None:
            timeline_record(
                system=portal_return.connection.kind, kind=TimelineKind.NOTE, portal_return=portal_return,
                summary=(f"Partial refund due: {flagged.refund_amount} {flagged.currency} of {flagged.total} "
                         f"({flagged.withheld_amount} withheld) — settle in Seller Center"),
                data=detail, dedupe_key=f"partial:{portal_return.pk}:{flagged.refund_amount}",
            )
    changes_notify(order_refs=[portal_return.order_ref])
    return flagged


def changes_notify(*, order_refs) -> None:
    """Tell whoever listens (the exception engine's incremental detection) that returns of
    these TikTok orders changed. Runs the listeners after commit; a listener failing never
    breaks the sync that called it. Listeners are dotted paths in
    ``settings.RETURN_CHANGE_LISTENERS``, each taking ``order_refs=`` (a set of str)."""
    import logging

    from django.conf import settings
    from django.utils.module_loading import import_string

    refs = {ref for ref in order_refs if ref}
    listeners = getattr(settings, "RETURN_CHANGE_LISTENERS", ())
    if not refs or not listeners:
        return

    def run() -> None:
        for dotted in listeners:
            try:
                import_string(dotted)(order_refs=refs)
            except Exception:  # noqa: BLE001 — detection is a backstop pass away; never fail a sync
                logging.getLogger(__name__).exception("change listener %s failed", dotted)

    transaction.on_commit(run)
