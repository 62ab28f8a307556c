"""Writes to the core domain. Keyword-only, typed, named ``<entity>_<verb>``."""
from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import TYPE_CHECKING

from django.core.exceptions import ValidationError
from django.db import transaction

from returnsync.models import BundleComponent, BundleMapping, Connection

if TYPE_CHECKING:
    from returnsync.money import PartialRefund


def connection_set_secrets(
    *, connection: Connection, credentials: dict | None = None, webhook_secret: str | None = None,
    actor=None,
) -> Connection:
    """Replace a connection's secrets. ``None`` or empty keeps what is stored: secrets are
    write-only, so a form left blank must never wipe them. The change history records which
    ones changed, by name, never their values."""
    from returnsync.history import record_as

    fields, names = [], []
    if credentials:
        stored = connection.credentials if isinstance(connection.credentials, dict) else {}
        connection.credentials = {**stored, **credentials}
        fields.append("credentials")
        names += sorted(credentials)
    if webhook_secret:
        connection.webhook_secret = webhook_secret
        fields.append("webhook_secret")
        names.append("webhook secret")
    if fields:
        record_as(connection, actor=actor, reason=f"Secrets set: {', '.join(names)}")
        connection.save(update_fields=[*fields, "updated_at"])
    return connection


@dataclass(frozen=True)
class ComponentSpec:
    component_sku: str
    quantity: int
    price_share: Decimal


SHARE_TOTAL = Decimal("1")
SHARE_DECIMAL_PLACES = 6  # BundleComponent.price_share stores six: validate what will be stored
# What the columns hold (BundleMapping.bundle_sku, .name, BundleComponent.component_sku) and a
# quantity no real bundle exceeds (PositiveIntegerField holds 2,147,483,647 on PostgreSQL).
SKU_MAX_LENGTH = 100
NAME_MAX_LENGTH = 200
COMPONENT_QUANTITY_MAX = 10_000


def bundle_components_validate(components: list[ComponentSpec]) -> None:
    """A bundle needs at least one component, no SKU twice, quantities from 1 to
    ``COMPONENT_QUANTITY_MAX``, and finite shares summing to exactly 1."""
    if not components:
        raise ValidationError("A bundle needs at least one component.")
    skus = [c.component_sku for c in components]
    if any(not sku or sku != sku.strip() for sku in skus):
        raise ValidationError("Component SKUs must be non-blank, with no leading or trailing spaces.")
    too_long = [sku for sku in skus if len(sku) > SKU_MAX_LENGTH]
    if too_long:
        raise ValidationError(f"Component SKU {too_long[0][:20]}… is longer than {SKU_MAX_LENGTH} characters.")
    duplicates = sorted({sku for sku in skus if skus.count(sku) > 1})
    if duplicates:
        raise ValidationError(f"Component listed twice: {', '.join(duplicates)}.")
    for component in components:
        if not 1 <= component.quantity <= COMPONENT_QUANTITY_MAX:
            raise ValidationError(
                f"{component.component_sku}: quantity must be from 1 to {COMPONENT_QUANTITY_MAX:,}.")
        if not component.price_share.is_finite():
            raise ValidationError(f"{component.component_sku}: price share must be a number above 0 and at most 1.")
        if not Decimal("0") < component.price_share <= SHARE_TOTAL:
            raise ValidationError(f"{component.component_sku}: price share must be above 0 and at most 1.")
        if component.price_share.as_tuple().exponent < -SHARE_DECIMAL_PLACES:
            raise ValidationError(
                f"{component.component_sku}: price share has more than {SHARE_DECIMAL_PLACES} decimal places."
            )
    total = sum((c.price_share for c in components), Decimal("0"))
    if total != SHARE_TOTAL:
        raise ValidationError(f"Price shares must sum to 1 (they sum to {total.normalize()}).")


def _bundle_head_clean(bundle_sku: str, name: str) -> str:
    """The bundle SKU, stripped, once it and the name are within bounds."""
    bundle_sku = bundle_sku.strip()
    if not bundle_sku:
        raise ValidationError("Bundle SKU is required.")
    if len(bundle_sku) > SKU_MAX_LENGTH:
        raise ValidationError(f"The bundle SKU is longer than {SKU_MAX_LENGTH} characters.")
    if len(name) > NAME_MAX_LENGTH:
        raise ValidationError(f"The name is longer than {NAME_MAX_LENGTH} characters.")
    return bundle_sku


def _components_clean(components: list[ComponentSpec]) -> list[ComponentSpec]:
    cleaned = [ComponentSpec(c.component_sku.strip(), c.quantity, Decimal(c.price_share)) for c in components]
    bundle_components_validate(cleaned)
    return cleaned


@dataclass(frozen=True)
class ComponentChange:
    """One component a save adds, removes, or gives another quantity or price share."""

    sku: str
    kind: str  # "added" | "removed" | "changed"
    before: tuple[int, Decimal] | None
    after: tuple[int, Decimal] | None

    @staticmethod
    def describe(value: tuple[int, Decimal] | None) -> str:
        return "" if value is None else f"{value[0]} × share {value[1].normalize():f}"


@dataclass(frozen=True)
class BundleChanges:
    """What saving a bundle form would change, shown before it is saved."""

    fields: tuple[tuple[str, str, str], ...]  # (label, before, after)
    components: tuple[ComponentChange, ...]

    @property
    def empty(self) -> bool:
        return not self.fields and not self.components


def _stored_components(bundle: BundleMapping) -> dict[str, tuple[int, Decimal]]:
    return {c.component_sku: (c.quantity, c.price_share) for c in bundle.components.all()}


def bundle_changes(*, bundle: BundleMapping, components: list[ComponentSpec], name: str,
                   is_active: bool) -> BundleChanges:
    """What would change if ``bundle`` were saved with these values (nothing is written)."""
    fields = []
    if bundle.name != name.strip():
        fields.append(("Name", bundle.name or "—", name.strip() or "—"))
    if bundle.is_active != is_active:
        fields.append(("Active", "yes" if bundle.is_active else "no", "yes" if is_active else "no"))
    stored = _stored_components(bundle)
    wanted = {c.component_sku.strip(): (c.quantity, Decimal(c.price_share)) for c in components}
    changes = [ComponentChange(sku, "removed", stored[sku], None) for sku in sorted(stored.keys() - wanted.keys())]
    changes += [ComponentChange(sku, "added", None, wanted[sku]) for sku in sorted(wanted.keys() - stored.keys())]
    changes += [ComponentChange(sku, "changed", stored[sku], wanted[sku]) for sku in sorted(stored.keys() & wanted.keys())
                if stored[sku] != wanted[sku]]
    order = {"added": 0, "changed": 1, "removed": 2}
    return BundleChanges(tuple(fields), tuple(sorted(changes, key=lambda c: (order[c.kind], c.sku))))


def bundle_state_token(bundle: BundleMapping) -> str:
    """A short digest of a bundle as stored: a confirmed edit applies only to the version
    the person saw (someone else saving in between sends them back to the preview)."""
    import hashlib

    state = [bundle.name, bundle.is_active,
             sorted((sku, q, f"{s.normalize():f}") for sku, (q, s) in _stored_components(bundle).items())]
    return hashlib.sha256(repr(state).encode()).hexdigest()[:16]


def _bundle_apply(bundle: BundleMapping, *, components: list[ComponentSpec], name: str, is_active: bool,
                  actor=None, reason: str = "") -> BundleMapping:
    """Write the components that differ (add, change, remove), then the bundle itself: its
    save is the one history row of this version, components included."""
    from returnsync.history import record_as

    stored = {c.component_sku: c for c in bundle.components.all()}
    wanted = {c.component_sku: c for c in components}
    for sku in stored.keys() - wanted.keys():
        stored[sku].delete()
    for sku, spec in wanted.items():
        row = stored.get(sku)
        if row is None:
            BundleComponent.objects.create(bundle=bundle, component_sku=sku, quantity=spec.quantity,
                                           price_share=spec.price_share)
        elif (row.quantity, row.price_share) != (spec.quantity, spec.price_share):
            row.quantity, row.price_share = spec.quantity, spec.price_share
            row.save(update_fields=["quantity", "price_share"])
    bundle.name, bundle.is_active = name.strip(), is_active
    record_as(bundle, actor=actor, reason=reason)
    bundle.save()
    return bundle


class BundleExists(ValidationError):
    """Creating a bundle whose SKU is taken: the existing one is to be edited instead."""

    def __init__(self, bundle: BundleMapping):
        self.bundle = bundle
        super().__init__(f"A bundle with SKU {bundle.bundle_sku} already exists.", code="exists")


@transaction.atomic
def bundle_mapping_create(*, bundle_sku: str, components: list[ComponentSpec], name: str = "",
                          is_active: bool = True, actor=None) -> BundleMapping:
    """A new bundle. A SKU that is taken is refused (``BundleExists``): never replaced."""
    from django.db import IntegrityError

    bundle_sku = _bundle_head_clean(bundle_sku, name)
    components = _components_clean(components)
    existing = BundleMapping.objects.filter(bundle_sku=bundle_sku).first()
    if existing is not None:
        raise BundleExists(existing)
    bundle = BundleMapping(bundle_sku=bundle_sku, name=name.strip(), is_active=is_active)
    try:
        with transaction.atomic():
            bundle.save_without_historical_record()  # the version is written once its components are
    except IntegrityError:  # created by someone else a moment ago
        raise BundleExists(BundleMapping.objects.get(bundle_sku=bundle_sku)) from None
    return _bundle_apply(bundle, components=components, name=name, is_active=is_active, actor=actor)


@transaction.atomic
def bundle_mapping_update(*, bundle: BundleMapping, components: list[ComponentSpec], name: str = "",
                          is_active: bool = True, actor=None, reason: str = "") -> BundleMapping:
    """Change an existing bundle (its SKU stays): only what differs is written."""
    bundle = BundleMapping.objects.select_for_update().get(pk=bundle.pk)
    _bundle_head_clean(bundle.bundle_sku, name)
    return _bundle_apply(bundle, components=_components_clean(components), name=name, is_active=is_active,
                         actor=actor, reason=reason)


@transaction.atomic
def bundle_mapping_save(
    *, bundle_sku: str, components: list[ComponentSpec], name: str = "", is_active: bool = True, actor=None,
) -> BundleMapping:
    """Create or replace a bundle mapping and its components, all or nothing (the CSV
    import and the sandbox seed; the form creates and updates explicitly)."""
    bundle_sku = _bundle_head_clean(bundle_sku, name)
    components = _components_clean(components)
    bundle = BundleMapping.objects.select_for_update().filter(bundle_sku=bundle_sku).first()
    if bundle is None:
        bundle = BundleMapping(bundle_sku=bundle_sku, name=name.strip(), is_active=is_active)
        bundle.save_without_historical_record()
    return _bundle_apply(bundle, components=components, name=name, is_active=is_active, actor=actor)


def portal_return_refund_refresh(*, portal_return, notify: bool = True) -> PartialRefund | None:
    """Recompute what a portal return is worth back (``returnsync.money``) and store it.

    Not received yet → nothing to judge: no expectation, the flag cleared. Received →
    ``expected_refund`` (the portal's authorised value, else the value of what came back,
    like TikTok's refund figure) and, when an item came back short or failed grading, the
    partial-refund flag (``partial_refund_amount``: the items' value coming back,
    ``partial_refund_detail``: per line). A return holding a SKU that matches nothing due
    is not flagged (its value is unknown; the bundle-mapping exception owns it). The first
    flagging and every change of amount go on the timeline (deduplicated, so replays add
    nothing). Returns the computation (None before receipt)."""
    from returnsync.choices import TimelineKind
    from returnsync.money import RECEIVED_STAGES, partial_refund_compute
    from returnsync.refund_gate import expected_refund_total
    from returnsync.timeline import timeline_record

    received = portal_return.received_at is not None or portal_return.stage in RECEIVED_STAGES
    computed = partial_refund_compute(portal_return=portal_return) if received else None
    flagged = computed if computed is not None and computed.is_partial and not computed.unresolved else None
    amount = flagged.refund_amount if flagged else None
    detail = flagged.as_json() if flagged else {}
    expected = expected_refund_total(portal_return=portal_return, expectation=computed) if computed else None
    stored = (portal_return.partial_refund_amount, portal_return.partial_refund_detail or {},
              portal_return.expected_refund)
    if (amount, detail, expected) != stored:
        portal_return.partial_refund_amount = amount
        portal_return.partial_refund_detail = detail
        portal_return.expected_refund = expected
        portal_return.save(update_fields=["partial_refund_amount", "partial_refund_detail", "expected_refund",
                                          "updated_at"])
        if flagged is not None:
            timeline_record(
                system=portal_return.connection.kind, kind=TimelineKind.NOTE, portal_return=portal_return,
                summary=(f"Partial return: {flagged.refund_amount} {flagged.currency} of {flagged.total} worth came "
                         f"back ({flagged.withheld_amount} withheld): {flagged.due_total} due in all"),
                data=detail, dedupe_key=f"partial:{portal_return.pk}:{flagged.refund_amount}",
            )
    if notify:
        changes_notify(order_refs=[portal_return.order_ref])
    return computed


def portal_return_partial_refund_refresh(*, portal_return) -> PartialRefund | None:
    """Recompute and store (``portal_return_refund_refresh``); the computation when the
    return is partial, else None."""
    computed = portal_return_refund_refresh(portal_return=portal_return)
    return computed if computed is not None and computed.is_partial and not computed.unresolved else None


def changes_notify(*, order_refs) -> None:
    """Tell whoever listens (the portal lifecycle's linking, a portal's mirror, the exception
    engine's incremental detection) that returns of these TikTok orders changed. Runs the
    listeners after commit, in registration order; a listener failing never breaks the
    sync that called it. Listeners register with
    ``returnsync.registry.change_listener_register``; each takes ``order_refs=`` (a set of str)."""
    import logging

    from returnsync import registry

    refs = {ref for ref in order_refs if ref}
    listeners = registry.change_listeners()
    if not refs or not listeners:
        return

    def run() -> None:
        for listener in listeners:
            try:
                listener(order_refs=refs)
            except Exception:
                logging.getLogger(__name__).exception("change listener %s failed", listener)

    transaction.on_commit(run)


# --- Bundle mappings: delete, CSV import/export --------------------------------------------

BUNDLE_CSV_HEADER: tuple[str, ...] = (
    "bundle_sku", "name", "is_active", "component_sku", "quantity", "price_share",
)
_TRUE = {"1", "true", "yes", "y", "active"}
_FALSE = {"0", "false", "no", "n", "inactive", ""}


def bundle_mapping_delete(*, bundle: BundleMapping, actor=None) -> None:
    from returnsync.history import bundle_components_snapshot, record_as

    bundle._history_components = bundle_components_snapshot(bundle)  # the cascade removes them first
    record_as(bundle, actor=actor)
    bundle.delete()


def bundle_mappings_export_rows():
    """The CSV the import reads: a header, then one row per component (bundle fields
    repeated). Exporting and importing back changes nothing."""
    from returnsync.selectors import bundle_mappings_for_export

    yield BUNDLE_CSV_HEADER
    for bundle in bundle_mappings_for_export():
        for c in bundle.components.all():
            yield (
                bundle.bundle_sku, bundle.name, "yes" if bundle.is_active else "no",
                c.component_sku, c.quantity, f"{c.price_share.normalize():f}",
            )


@dataclass(frozen=True)
class RowError:
    row: int  # the line number in the file (the header is line 1)
    message: str


@dataclass
class BundleImportResult:
    errors: list[RowError]
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    @property
    def ok(self) -> bool:
        return not self.errors


def _bundle_state(bundle: BundleMapping) -> tuple:
    return (
        bundle.name, bundle.is_active,
        sorted((c.component_sku, c.quantity, c.price_share) for c in bundle.components.all()),
    )


def bundle_mappings_import_csv(*, content: bytes | str, actor=None) -> BundleImportResult:
    """Import bundle mappings from CSV (``BUNDLE_CSV_HEADER``; one row per component, a
    bundle's rows together or not). **All or nothing**: every row is checked first (row
    number and reason for each problem, including a bundle whose shares do not sum to 1,
    reported on its first row); if anything is wrong nothing is saved. Bundles in the
    file replace their stored components; bundles not in the file are left alone; a
    bundle identical to what is stored is not touched, so importing the same file twice
    changes nothing."""
    import csv
    import io
    from decimal import InvalidOperation

    if isinstance(content, bytes):
        try:
            content = content.decode("utf-8-sig")
        except UnicodeDecodeError:
            return BundleImportResult(errors=[RowError(1, "The file is not UTF-8 text (save it as CSV UTF-8).")])
    reader = csv.reader(io.StringIO(content))
    try:
        header = [h.strip().lower() for h in next(reader, [])]
    except csv.Error as exc:
        return BundleImportResult(errors=[RowError(1, f"The header line is not readable CSV ({exc}).")])
    missing = [h for h in BUNDLE_CSV_HEADER if h not in header and h not in ("name", "is_active")]
    if missing:
        return BundleImportResult(errors=[RowError(1, f"Missing column(s): {', '.join(missing)}. "
                                                      f"Expected: {', '.join(BUNDLE_CSV_HEADER)}.")])
    errors: list[RowError] = []
    bundles: dict[str, dict] = {}
    line = 1
    for line, values in _csv_rows(reader, errors):
        if not any(v.strip() for v in values):
            continue
        row = dict(zip(header, (v.strip() for v in values), strict=False))
        problems = []
        sku = row.get("bundle_sku", "")
        if not sku:
            problems.append("bundle_sku is empty")
        component = row.get("component_sku", "")
        if not component:
            problems.append("component_sku is empty")
        if len(sku) > SKU_MAX_LENGTH:
            problems.append(f"bundle_sku is longer than {SKU_MAX_LENGTH} characters")
        if len(component) > SKU_MAX_LENGTH:
            problems.append(f"component_sku is longer than {SKU_MAX_LENGTH} characters")
        if len(row.get("name", "")) > NAME_MAX_LENGTH:
            problems.append(f"name is longer than {NAME_MAX_LENGTH} characters")
        quantity_text = row.get("quantity", "")
        try:
            if len(quantity_text) > 12:
                raise ValueError
            quantity = int(quantity_text)
            if not 1 <= quantity <= COMPONENT_QUANTITY_MAX:
                raise ValueError
        except ValueError:
            problems.append(f"quantity {quantity_text[:20]!r} is not a whole number from 1 to "
                            f"{COMPONENT_QUANTITY_MAX:,}")
            quantity = None
        share_text = row.get("price_share", "")
        try:
            if len(share_text) > 30:
                raise InvalidOperation
            share = Decimal(share_text)
            if not share.is_finite() or not Decimal("0") < share <= SHARE_TOTAL:
                raise InvalidOperation
        except InvalidOperation:
            problems.append(f"price_share {share_text[:20]!r} is not a number above 0 and at most 1")
            share = None
        active_text = row.get("is_active", "yes").lower()
        if active_text not in _TRUE | _FALSE:
            problems.append(f"is_active {row.get('is_active')!r} is not yes/no")
        if problems:
            errors.append(RowError(line, "; ".join(problems) + "."))
            continue
        entry = bundles.setdefault(sku, {"first_row": line, "name": row.get("name", ""),
                                         "is_active": active_text in _TRUE, "components": []})
        entry["components"].append(ComponentSpec(component, quantity, share))
    if not bundles and not errors:
        errors.append(RowError(max(line, 2), "The file has no rows after the header."))
    for sku, entry in bundles.items():
        try:
            bundle_components_validate(entry["components"])
        except ValidationError as exc:
            errors.append(RowError(entry["first_row"], f"Bundle {sku}: {' '.join(exc.messages)}"))
    if errors:
        return BundleImportResult(errors=sorted(errors, key=lambda e: e.row))
    result = BundleImportResult(errors=[])
    existing = {
        b.bundle_sku: b
        for b in BundleMapping.objects.filter(bundle_sku__in=list(bundles)).prefetch_related("components")
    }
    with transaction.atomic():
        for sku, entry in bundles.items():
            wanted = (entry["name"], entry["is_active"],
                      sorted((c.component_sku, c.quantity, c.price_share) for c in entry["components"]))
            current = existing.get(sku)
            if current is not None and _bundle_state(current) == wanted:
                result.unchanged += 1
                continue
            bundle_mapping_save(bundle_sku=sku, components=entry["components"], name=entry["name"],
                                is_active=entry["is_active"], actor=actor)
            if current is None:
                result.created += 1
            else:
                result.updated += 1
    return result


def _csv_rows(reader, errors: list[RowError]):
    """(line number, values) of each CSV record; a record the csv module cannot read (a
    field over its size limit, an unterminated quote) ends the file with that line's error."""
    import csv

    line = 1
    while True:
        try:
            values = next(reader)
        except StopIteration:
            return
        except csv.Error as exc:
            errors.append(RowError(reader.line_num or line + 1,
                                   f"Not readable CSV ({exc}); check quotes and very long fields."))
            return
        line = reader.line_num
        yield line, values


# --- Warehouse mappings --------------------------------------------------------------------


@transaction.atomic
def warehouse_mapping_save(
    *, connection: Connection, location_code: str, tiktok_warehouse_id: str, name: str = "",
    is_default: bool = False, mapping=None, actor=None, reason: str = "",
):
    """Create (``mapping=None``) or update a warehouse mapping. Making one the default
    makes the connection's previous default an ordinary mapping (a change in its history too)."""
    from returnsync.history import record_as
    from returnsync.models import WarehouseMapping

    location_code, tiktok_warehouse_id = location_code.strip(), tiktok_warehouse_id.strip()
    if not location_code or not tiktok_warehouse_id:
        raise ValidationError("Location code and TikTok warehouse id are both required.")
    clash = WarehouseMapping.objects.filter(connection=connection, location_code=location_code)
    if mapping is not None:
        clash = clash.exclude(pk=mapping.pk)
    if clash.exists():
        raise ValidationError(f"{location_code} is already mapped for {connection}.")
    if is_default:
        others = WarehouseMapping.objects.filter(connection=connection, is_default=True)
        if mapping is not None:
            others = others.exclude(pk=mapping.pk)
        for other in others:
            other.is_default = False
            record_as(other, actor=actor, reason=f"{location_code} became the default")
            other.save(update_fields=["is_default", "updated_at"])
    mapping = mapping or WarehouseMapping()
    mapping.connection = connection
    mapping.location_code = location_code
    mapping.tiktok_warehouse_id = tiktok_warehouse_id
    mapping.name = name.strip()
    mapping.is_default = is_default
    record_as(mapping, actor=actor, reason=reason)
    mapping.save()
    return mapping


def warehouse_mapping_delete(*, mapping, actor=None) -> None:
    from returnsync.history import record_as

    record_as(mapping, actor=actor)
    mapping.delete()


# --- Connections: test, enable/disable -----------------------------------------------------


@dataclass(frozen=True)
class ConnectionTestResult:
    ok: bool
    message: str
    duration_ms: int


def connection_test_run(*, connection: Connection) -> ConnectionTestResult:
    """Run the connector's live "test connection" call (``Connector.connection_test``).
    Never raises: a failure is a readable message. The connectors' HTTP clients carry
    timeouts, so this does not hang."""
    import time

    from returnsync import registry

    found = registry.connector_or_none(connection.kind)
    if found is None or found.connection_test is None:
        return ConnectionTestResult(False, f"No connection test for {connection.get_kind_display()} yet.", 0)
    from django.utils import timezone

    started = time.monotonic()
    try:
        message = found.connection_test(connection=connection)
        ok = True
    except Exception as exc:
        ok, message = False, f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__
    # The test is the freshest check there is: the health badge goes by it (no history row).
    fields = {"last_test_at": timezone.now(), "last_test_ok": ok, "last_test_message": str(message)[:2000]}
    Connection.objects.filter(pk=connection.pk).update(**fields)
    for name, value in fields.items():
        setattr(connection, name, value)
    return ConnectionTestResult(ok, str(message), int((time.monotonic() - started) * 1000))


def connection_toggle(*, connection: Connection, enabled: bool | None = None,
                      sandbox: bool | None = None, actor=None) -> Connection:
    """Enable/disable a connection or flip its sandbox flag (``None`` leaves it)."""
    from returnsync.history import record_as

    record_as(connection, actor=actor)
    fields = []
    if enabled is not None and connection.is_enabled != enabled:
        connection.is_enabled = enabled
        fields.append("is_enabled")
    if sandbox is not None and connection.is_sandbox != sandbox:
        connection.is_sandbox = sandbox
        fields.append("is_sandbox")
    if fields:
        connection.save(update_fields=[*fields, "updated_at"])
    return connection


# --- Retrying a failed step by hand --------------------------------------------------------
#
# Used by the dead-letter list, sync health and the exception page's Retry button, so all
# do exactly the same thing. Only the failed row is touched: its status goes back to queued
# (with room for more attempts) and its run is enqueued through the connectors' plumbing
# (``returnsync.registry.PLUMBING``); rows that already succeeded are never re-run, and
# the run itself still claims its row with a conditional update.

# How many more attempts a manual retry grants a write-back that used all of its own.
RETRY_EXTRA_ATTEMPTS = 3


class NotRetryable(ValueError):
    """The row is not in a failed state (already succeeded, running, or no connector runs it)."""


def inbound_event_retry(*, event_id: int):
    """Process a dead letter again."""
    from returnsync import registry
    from returnsync.choices import InboundStatus
    from returnsync.models import InboundEvent

    with transaction.atomic():
        event = InboundEvent.objects.select_for_update().get(pk=event_id)
        if event.status != InboundStatus.FAILED:
            raise NotRetryable(f"event {event_id} is {event.get_status_display().lower()}, not a dead letter")
        found = registry.connector_or_none(event.source)
        if found is None or found.process_event is None or registry.PLUMBING.inbound_enqueue is None:
            raise NotRetryable(f"no processor for {event.get_source_display()} events")
        event.status = InboundStatus.RECEIVED
        event.error = ""
        event.save(update_fields=["status", "error"])
        registry.PLUMBING.inbound_enqueue(event_id=event.pk, source=event.source)
    return event


@dataclass(frozen=True)
class RetryOutcome:
    """What a Retry did, in words a person reads on the page."""

    ok: bool
    status: str
    message: str


def inbound_event_retry_now(*, event_id: int) -> RetryOutcome:
    """Process a dead letter again *now* and say what happened: applied, nothing to apply,
    or failed again with the reason (then it stays a dead letter, as the list shows). Only a
    dead letter is taken (a conditional update), so two people pressing Retry process it once."""
    from returnsync import registry
    from returnsync.choices import InboundStatus
    from returnsync.models import InboundEvent

    event = InboundEvent.objects.filter(pk=event_id).only("pk", "status", "source").first()
    if event is None:
        raise NotRetryable(f"there is no event {event_id}")
    if event.status != InboundStatus.FAILED:
        raise NotRetryable(f"event {event_id} is {event.get_status_display().lower()}, not a dead letter")
    found = registry.connector_or_none(event.source)
    if found is None or found.process_event is None or registry.PLUMBING.inbound_process is None:
        raise NotRetryable(f"no processor for {event.get_source_display()} events")
    taken = InboundEvent.objects.filter(pk=event_id, status=InboundStatus.FAILED).update(
        status=InboundStatus.RECEIVED, error="")
    if not taken:
        raise NotRetryable(f"event {event_id} is being retried already")
    event = registry.PLUMBING.inbound_process(event_id=event_id)
    if event.status == InboundStatus.PROCESSED:
        return RetryOutcome(True, event.status, f"Event {event_id} applied: processed on attempt {event.attempts}.")
    if event.status == InboundStatus.IGNORED:
        return RetryOutcome(True, event.status, f"Event {event_id} processed: nothing to apply (stale, or a type "
                                                f"we do not act on).")
    return RetryOutcome(False, event.status, f"Event {event_id} failed again (attempt {event.attempts}): "
                                             f"{event.error or 'no reason given'}. It stays a dead letter.")


def write_back_retry(*, write_back_id: int):
    """Run a write-back that gave up (or is waiting for its retry) again, with fresh attempts."""
    from django.db.models import F
    from django.db.models.functions import Greatest
    from django.utils import timezone

    from returnsync import registry
    from returnsync.choices import JobStatus
    from returnsync.models import InventoryAdjustment, WriteBack

    retryable = (JobStatus.DEAD, JobStatus.RETRYING)
    with transaction.atomic():
        write_back = WriteBack.objects.select_for_update().select_related("connection").get(pk=write_back_id)
        if write_back.status not in retryable:
            raise NotRetryable(f"write-back {write_back_id} is {write_back.get_status_display().lower()}")
        found = registry.connector_or_none(write_back.connection.kind)
        if found is None or write_back.action not in found.write_back_runners \
                or registry.PLUMBING.write_back_enqueue is None:
            raise NotRetryable(f"no runner for {write_back.connection.get_kind_display()} write-backs")
        # A retry never takes attempts away: one still retrying keeps its budget (and is due
        # now), one that used them all gets a few more.
        WriteBack.objects.filter(pk=write_back.pk).update(
            status=JobStatus.QUEUED, next_attempt_at=None, updated_at=timezone.now(),
            max_attempts=Greatest(F("max_attempts"), F("attempts") + RETRY_EXTRA_ATTEMPTS),
        )
        InventoryAdjustment.objects.filter(write_back=write_back, status__in=retryable).update(
            status=JobStatus.QUEUED, updated_at=timezone.now())
        write_back.refresh_from_db()
        registry.PLUMBING.write_back_enqueue(write_back=write_back)
    return write_back


# --- A person's decision on a marketplace request ------------------------------------------


class ActionRefused(ValueError):
    """The step is not possible now; the message says why (shown as it is)."""


REQUEST_DECIDERS = frozenset({"CX"})


def marketplace_request_decide(*, marketplace_return, kind: str, user, reject_reason: str = "",
                               comment: str = ""):
    """Approve or reject a marketplace request (a refund, return or replacement request the
    marketplace waits on) for CX, through the marketplace's own API: only a decision the
    marketplace takes now, a reject only with one of the reasons it offers now. Queued once
    per decision (the write-back is idempotent); returns it."""
    from django.core.exceptions import PermissionDenied

    from returnsync import registry
    from returnsync.roles import Role, has_any_role

    if not has_any_role(user, frozenset({Role.CX})):
        raise PermissionDenied("Only CX (or an admin) approves or rejects a TikTok request.")
    ops = registry.marketplace_for(marketplace_return.connection)
    decisions = ops.request_decisions(marketplace_return)
    if kind not in decisions:
        waits = marketplace_return.next_action or "nothing"
        raise ActionRefused(f"TikTok is not waiting for the seller to approve or reject this request (it waits "
                            f"for {waits}).")
    if kind == "reject":
        if not reject_reason:
            raise ActionRefused("Choose one of TikTok's reasons for the reject.")
        if reject_reason not in dict(ops.reject_reasons(marketplace_return)):
            raise ActionRefused("TikTok does not take that reason for this request now: choose one it lists.")
    return ops.request_decide(marketplace_return=marketplace_return, decision=decisions[kind],
                              reject_reason=reject_reason if kind == "reject" else "", comment=comment[:500],
                              actor=user)


def portal_mirror_now(*, marketplace_return, user):
    """Create the portal record for a TikTok return missing from the portal, now (operations):
    a failed mirror is retried, else one is queued on each portal connection that mirrors
    this shop's returns. Returns a sentence saying what happened."""
    from django.core.exceptions import PermissionDenied

    from returnsync import registry
    from returnsync.choices import JobStatus, WriteBackAction
    from returnsync.lifecycle import portal_connections_for
    from returnsync.models import PortalReturn, WriteBack
    from returnsync.roles import Role, has_any_role

    if not has_any_role(user, frozenset({Role.OPERATIONS})):
        raise PermissionDenied("Only operations (or an admin) mirrors a return into the portal.")
    if PortalReturn.objects.filter(marketplace_return=marketplace_return).exists():
        raise ActionRefused("The return already has a portal record.")
    done = []
    for connection in portal_connections_for(marketplace_return.connection_id):
        mirror = registry.connector(connection.kind).mirror
        if mirror is None:
            continue
        failed = WriteBack.objects.filter(connection=connection, marketplace_return=marketplace_return,
                                          action=WriteBackAction.CREATE_PORTAL_RETURN,
                                          status__in=(JobStatus.DEAD, JobStatus.RETRYING)).first()
        if failed is not None:
            write_back_retry(write_back_id=failed.pk)
        else:
            mirror(connection=connection, marketplace_return=marketplace_return)
        done.append(connection.get_kind_display())
    if not done:
        raise ActionRefused("No enabled portal connection of this shop creates returns (they link them).")
    return f"Queued: create the return in {', '.join(done)}; it appears here once the portal answers."


def receipt_resend(*, marketplace_return, user):
    """Send the received-package decision again (operations), when TikTok answered success
    yet still shows the parcel unreturned. Only after the gate released it; TikTok itself
    refuses a second approval ("already approved"), so it cannot pay twice."""
    from django.core.exceptions import PermissionDenied

    from returnsync import registry
    from returnsync.choices import ReleaseState
    from returnsync.models import PortalReturn
    from returnsync.roles import Role, has_any_role

    if not has_any_role(user, frozenset({Role.OPERATIONS})):
        raise PermissionDenied("Only operations (or an admin) re-sends a receipt.")
    ops = registry.marketplace_for(marketplace_return.connection)
    released = PortalReturn.objects.filter(marketplace_return=marketplace_return,
                                           release_state=ReleaseState.RELEASED).exists()
    if not released or not ops.refund_release_sent(marketplace_return):
        raise ActionRefused("The refund gate has not released this return: there is no receipt to re-send.")
    return ops.refund_release_resend(marketplace_return=marketplace_return, actor=user)


# --- Change history: restoring a version -----------------------------------------------------
#
# A restore is a new change through the same write as an edit (checked the same way), made
# by an admin and recorded with the reason "Restored the version of …" (``returnsync.history``).


def _require_admin(user, what: str) -> None:
    from django.core.exceptions import PermissionDenied

    from returnsync.roles import Role, has_any_role

    if not has_any_role(user, frozenset({Role.ADMIN})):
        raise PermissionDenied(f"Only an admin restores {what}.")


def _version(model, history_id: int):
    record = model.history.filter(history_id=history_id).first()
    if record is None:
        raise ActionRefused(f"No version #{history_id}.")
    if record.history_type == "-":
        raise ActionRefused("That version is the deletion: there is nothing to restore from it.")
    return record


def bundle_mapping_restore(*, history_id: int, actor) -> BundleMapping:
    """Put a bundle back as it was in one of its versions (name, active, components)."""
    from returnsync.history import restore_reason

    _require_admin(actor, "a bundle")
    record = _version(BundleMapping, history_id)
    bundle = BundleMapping.objects.filter(pk=record.id).first()
    if bundle is None:
        raise ActionRefused("The bundle was deleted since: create it again from its history instead.")
    components = [ComponentSpec(sku, int(quantity), Decimal(share)) for sku, quantity, share in record.components]
    return bundle_mapping_update(bundle=bundle, components=components, name=record.name,
                                 is_active=record.is_active, actor=actor, reason=restore_reason(record))


def warehouse_mapping_restore(*, history_id: int, actor):
    from returnsync.history import restore_reason
    from returnsync.models import WarehouseMapping

    _require_admin(actor, "a warehouse mapping")
    record = _version(WarehouseMapping, history_id)
    mapping = WarehouseMapping.objects.filter(pk=record.id).first()
    connection = Connection.objects.filter(pk=record.connection_id).first()
    if mapping is None or connection is None:
        raise ActionRefused("The mapping (or its connection) was deleted since.")
    return warehouse_mapping_save(mapping=mapping, connection=connection, location_code=record.location_code,
                                  tiktok_warehouse_id=record.tiktok_warehouse_id, name=record.name,
                                  is_default=record.is_default, actor=actor, reason=restore_reason(record))


# What restoring a connection's version puts back: its settings. Never its secrets (history
# has none) nor its webhook URL (the other system is configured with the current one).
CONNECTION_RESTORED_FIELDS = ("name", "base_url", "is_enabled", "is_sandbox", "poll_interval_seconds",
                              "rate_limit_per_second", "options")


def connection_restore(*, history_id: int, actor) -> Connection:
    from django.db import IntegrityError

    from returnsync.history import record_as, restore_reason

    _require_admin(actor, "a connection")
    record = _version(Connection, history_id)
    with transaction.atomic():
        connection = Connection.objects.select_for_update().filter(pk=record.id).first()
        if connection is None:
            raise ActionRefused("The connection was deleted since.")
        for name in CONNECTION_RESTORED_FIELDS:
            setattr(connection, name, getattr(record, name))
        record_as(connection, actor=actor, reason=restore_reason(record))
        try:
            with transaction.atomic():
                connection.save(update_fields=[*CONNECTION_RESTORED_FIELDS, "updated_at"])
        except IntegrityError:
            raise ActionRefused(f"Another {connection.get_kind_display()} connection is named "
                                f"{record.name!r} now.") from None
    return connection
