"""Every database constraint refuses the row it exists to refuse, and still admits its
legal neighbour (a zero amount, the same id on another connection, a blank ref).

Each case names the constraint it exercises, and the error must name it too, so a
row refused for another reason (a missing NOT NULL column) cannot pass for a test.
A constraint added to a model without a case here fails ``test_every_constraint_has_a_case``.
"""
from __future__ import annotations

from collections.abc import Callable
from decimal import Decimal

import pytest
from django.apps import apps
from django.db import IntegrityError, connection, models, transaction

from tests.factories import (
    BundleComponentFactory,
    BundleMappingFactory,
    ConnectionFactory,
    InboundEventFactory,
    InventoryAdjustmentFactory,
    MarketplaceReturnFactory,
    MarketplaceReturnLineFactory,
    OrderFactory,
    OrderLineComponentFactory,
    OrderLineFactory,
    PortalReturnFactory,
    PortalReturnLineFactory,
    RefundFactory,
    ReturnEventFactory,
    SyncCursorFactory,
    WarehouseMappingFactory,
    WriteBackFactory,
)

Make = Callable[[], object]
# A case sets up what it needs and returns (rows that must be refused, rows that must be accepted).
Case = Callable[[], tuple[list[Make], list[Make]]]
CASES: dict[str, Case] = {}


def case(key: str):
    """Register a case under a Meta constraint name, or ``Model.field`` for ``unique=True``."""

    def register(fn: Case) -> Case:
        CASES[key] = fn
        return fn

    return register


def core_models() -> list[type[models.Model]]:
    return list(apps.get_app_config("returnsync").get_models())


def meta_constraints() -> dict[str, tuple[type[models.Model], models.BaseConstraint]]:
    return {c.name: (model, c) for model in core_models() for c in model._meta.constraints}


def unique_fields() -> dict[str, tuple[type[models.Model], models.Field]]:
    return {
        f"{model.__name__}.{field.name}": (model, field)
        for model in core_models()
        for field in model._meta.local_fields
        if field.unique and not field.primary_key
    }


def error_fragments(key: str) -> list[str]:
    """What the database's error message says when ``key`` is what refused the row."""
    postgres = connection.vendor == "postgresql"
    if key in unique_fields():
        model, field = unique_fields()[key]
        return [f"Key ({field.column})"] if postgres else [f"{model._meta.db_table}.{field.column}"]
    model, constraint = meta_constraints()[key]
    if postgres or isinstance(constraint, models.CheckConstraint):
        return [f'"{key}"' if postgres else key]
    return [f"{model._meta.db_table}.{model._meta.get_field(name).column}" for name in constraint.fields]


def assert_refused(make: Make, key: str) -> None:
    with pytest.raises(IntegrityError) as caught, transaction.atomic():
        make()
    message = str(caught.value)
    for fragment in error_fragments(key):
        assert fragment in message, f"refused, but not by {key}: {message}"


# --- amounts >= 0 -----------------------------------------------------------------------

NEGATIVE = Decimal("-0.01")


def _amount_case(factory, field: str, nullable: bool) -> tuple[list[Make], list[Make]]:
    allowed = [lambda: factory(**{field: Decimal(0)})]
    if nullable:
        allowed.append(lambda: factory(**{field: None}))
    return [lambda: factory(**{field: NEGATIVE})], allowed


case("orderline_sale_price_non_negative")(lambda: _amount_case(OrderLineFactory, "sale_price", False))
case("marketplacereturn_refund_total_non_negative")(
    lambda: _amount_case(MarketplaceReturnFactory, "refund_total", True)
)
case("marketplacereturn_refund_subtotal_non_negative")(
    lambda: _amount_case(MarketplaceReturnFactory, "refund_subtotal", True)
)
case("marketplacereturn_partial_refund_offered_non_negative")(
    lambda: _amount_case(MarketplaceReturnFactory, "partial_refund_offered", True)
)
case("mreturnline_refund_amount_non_negative")(
    lambda: _amount_case(MarketplaceReturnLineFactory, "refund_amount", True)
)
case("portalreturn_authorized_refund_non_negative")(
    lambda: _amount_case(PortalReturnFactory, "authorized_refund", True)
)
case("portalreturn_partial_refund_amount_non_negative")(
    lambda: _amount_case(PortalReturnFactory, "partial_refund_amount", True)
)
case("portalreturn_expected_refund_non_negative")(
    lambda: _amount_case(PortalReturnFactory, "expected_refund", True)
)
case("preturnline_unit_price_non_negative")(lambda: _amount_case(PortalReturnLineFactory, "unit_price", True))
case("refund_amount_non_negative")(lambda: _amount_case(RefundFactory, "amount", False))


# --- one row per (connection, external id) ----------------------------------------------


def _per_connection_case(factory, field: str) -> tuple[list[Make], list[Make]]:
    first = factory()
    value = getattr(first, field)
    return (
        [lambda: factory(connection=first.connection, **{field: value})],
        [lambda: factory(**{field: value})],  # the same id on another connection
    )


case("order_unique_per_connection")(lambda: _per_connection_case(OrderFactory, "order_id"))
case("marketplacereturn_unique_per_connection")(
    lambda: _per_connection_case(MarketplaceReturnFactory, "return_id")
)
case("portalreturn_unique_per_connection")(lambda: _per_connection_case(PortalReturnFactory, "external_id"))
case("refund_unique_per_connection")(lambda: _per_connection_case(RefundFactory, "external_id"))


@case("portalreturn_unique_return_ref")
def _portal_return_ref():
    first = PortalReturnFactory()
    portal = first.connection
    return (
        [lambda: PortalReturnFactory(connection=portal, return_ref=first.return_ref)],
        [
            lambda: PortalReturnFactory(connection=portal, return_ref=""),
            lambda: PortalReturnFactory(connection=portal, return_ref=""),  # blank is not a ref
            lambda: PortalReturnFactory(return_ref=first.return_ref),  # another portal
        ],
    )


# --- one row per (parent, line id) ------------------------------------------------------


def _per_parent_case(factory, parent: str, field: str) -> tuple[list[Make], list[Make]]:
    first = factory()
    value = getattr(first, field)
    return (
        [lambda: factory(**{parent: getattr(first, parent), field: value})],
        [lambda: factory(**{field: value})],
    )


case("orderline_unique_per_order")(lambda: _per_parent_case(OrderLineFactory, "order", "line_id"))
case("mreturnline_unique_per_return")(
    lambda: _per_parent_case(MarketplaceReturnLineFactory, "marketplace_return", "line_id")
)
case("preturnline_unique_per_return")(
    lambda: _per_parent_case(PortalReturnLineFactory, "portal_return", "line_id")
)
case("bundlecomponent_unique")(lambda: _per_parent_case(BundleComponentFactory, "bundle", "component_sku"))
case("synccursor_unique_stream")(lambda: _per_parent_case(SyncCursorFactory, "connection", "stream"))
case("warehousemapping_unique_code")(
    lambda: _per_parent_case(WarehouseMappingFactory, "connection", "location_code")
)


@case("orderlinecomponent_unique")
def _order_line_component():
    first = OrderLineComponentFactory()
    same = {"line": first.line, "sku_id": first.sku_id, "seller_sku": first.seller_sku}
    return (
        [lambda: OrderLineComponentFactory(**same)],
        [lambda: OrderLineComponentFactory(line=first.line, sku_id=first.sku_id)],  # another seller SKU
    )


# --- quantities and counts --------------------------------------------------------------


@case("preturnline_received_lte_expected")
def _received_lte_expected():
    return (
        [lambda: PortalReturnLineFactory(expected_quantity=1, received_quantity=2)],
        [lambda: PortalReturnLineFactory(expected_quantity=2, received_quantity=2)],
    )


case("orderlinecomponent_quantity_min")(
    lambda: ([lambda: OrderLineComponentFactory(quantity=0)], [lambda: OrderLineComponentFactory(quantity=1)])
)
case("bundlecomponent_quantity_min")(
    lambda: ([lambda: BundleComponentFactory(quantity=0)], [lambda: BundleComponentFactory(quantity=1)])
)


@case("bundlecomponent_share_range")
def _share_range():
    shares_refused = [Decimal(0), Decimal("-0.25"), Decimal("1.5")]
    shares_allowed = [Decimal(1), Decimal("0.000001")]
    return (
        [lambda share=share: BundleComponentFactory(price_share=share) for share in shares_refused],
        [lambda share=share: BundleComponentFactory(price_share=share) for share in shares_allowed],
    )


@case("inventoryadjustment_delta_non_zero")
def _delta_non_zero():
    return (
        [lambda: InventoryAdjustmentFactory(delta=0)],
        [lambda: InventoryAdjustmentFactory(delta=-1), lambda: InventoryAdjustmentFactory(delta=3)],
    )


@case("writeback_attempts_lte_max")
def _attempts_lte_max():
    return (
        [lambda: WriteBackFactory(attempts=9, max_attempts=8)],
        [lambda: WriteBackFactory(attempts=8, max_attempts=8)],
    )


# --- connections and warehouses --------------------------------------------------------


@case("connection_unique_kind_name")
def _connection_name():
    first = ConnectionFactory(name="Main shop")
    return (
        [lambda: ConnectionFactory(name="Main shop", kind=first.kind)],
        [lambda: ConnectionFactory(name="Main shop", kind="zigzag")],
    )


case("connection_poll_interval_min")(
    lambda: ([lambda: ConnectionFactory(poll_interval_seconds=9)], [lambda: ConnectionFactory(poll_interval_seconds=10)])
)
case("connection_rate_limit_min")(
    lambda: ([lambda: ConnectionFactory(rate_limit_per_second=0)], [lambda: ConnectionFactory(rate_limit_per_second=1)])
)


@case("warehousemapping_one_default")
def _one_default_warehouse():
    first = WarehouseMappingFactory(is_default=True)
    return (
        [lambda: WarehouseMappingFactory(connection=first.connection, is_default=True)],
        [
            lambda: WarehouseMappingFactory(connection=first.connection, is_default=False),
            lambda: WarehouseMappingFactory(is_default=True),  # another connection's default
        ],
    )


# --- replay safety: dedupe and idempotency keys ----------------------------------------


@case("inboundevent_unique_dedupe_key")
def _inbound_dedupe():
    first = InboundEventFactory()
    return (
        [lambda: InboundEventFactory(source=first.source, dedupe_key=first.dedupe_key)],
        [lambda: InboundEventFactory(source="zigzag", dedupe_key=first.dedupe_key)],
    )


def _unique_key_case(factory, field: str, **allowed_twice) -> tuple[list[Make], list[Make]]:
    first = factory()
    return [lambda: factory(**{field: getattr(first, field)})], [lambda: factory(**allowed_twice)]


case("WriteBack.idempotency_key")(lambda: _unique_key_case(WriteBackFactory, "idempotency_key"))
case("InventoryAdjustment.idempotency_key")(
    lambda: _unique_key_case(InventoryAdjustmentFactory, "idempotency_key")
)
case("BundleMapping.bundle_sku")(lambda: _unique_key_case(BundleMappingFactory, "bundle_sku"))
case("Connection.webhook_slug")(lambda: _unique_key_case(ConnectionFactory, "webhook_slug"))


@case("returnevent_unique_dedupe_key")
def _timeline_dedupe():
    ReturnEventFactory(dedupe_key="tiktok:4035:status:AWAITING_BUYER_SHIP")
    ReturnEventFactory(dedupe_key=None)
    return (
        [lambda: ReturnEventFactory(dedupe_key="tiktok:4035:status:AWAITING_BUYER_SHIP")],
        [lambda: ReturnEventFactory(dedupe_key=None)],  # events without a key never collide
    )


# --- the tests ------------------------------------------------------------------------


@pytest.mark.django_db
@pytest.mark.parametrize("key", sorted(CASES))
def test_constraint_refuses_violation_and_admits_neighbour(key):
    refused, allowed = CASES[key]()
    for make in refused:
        assert_refused(make, key)
    for make in allowed:
        make()


def test_every_constraint_has_a_case():
    declared = set(meta_constraints()) | set(unique_fields())
    assert declared - set(CASES) == set()
    assert set(CASES) - declared == set(), "a case names a constraint the models no longer declare"
