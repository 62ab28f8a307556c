"""Core write services: bundle mappings, connection secrets, the return timeline."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import ValidationError
from django.utils import timezone

from returnsync.choices import System, TimelineKind
from returnsync.models import BundleComponent, BundleMapping, Connection, ReturnEvent
from returnsync.services import ComponentSpec, bundle_mapping_save, connection_set_secrets
from returnsync.timeline import timeline_record
from tests.factories import (
    ConnectionFactory,
    MarketplaceReturnFactory,
    PortalReturnFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db


def spec(sku: str, share: str, quantity: int = 1) -> ComponentSpec:
    return ComponentSpec(component_sku=sku, quantity=quantity, price_share=Decimal(share))


def stored_components(bundle_sku: str) -> list[tuple[str, int, Decimal]]:
    return list(
        BundleComponent.objects.filter(bundle__bundle_sku=bundle_sku)
        .order_by("component_sku")
        .values_list("component_sku", "quantity", "price_share")
    )


# --- bundle_mapping_save ---------------------------------------------------------------


def test_bundle_with_shares_summing_to_one_is_saved():
    bundle = bundle_mapping_save(
        bundle_sku="  KIT-1 ",
        name="Starter kit",
        components=[spec("TEE", "0.5"), spec("CAP", "0.3"), spec("SOCKS", "0.2", quantity=2)],
    )

    assert bundle.bundle_sku == "KIT-1"
    assert BundleMapping.objects.get().name == "Starter kit"
    assert stored_components("KIT-1") == [
        ("CAP", 1, Decimal("0.3")),
        ("SOCKS", 2, Decimal("0.2")),
        ("TEE", 1, Decimal("0.5")),
    ]


def test_shares_not_summing_to_one_are_refused_naming_the_sum():
    with pytest.raises(ValidationError) as caught:
        bundle_mapping_save(bundle_sku="KIT-1", components=[spec("TEE", "0.5"), spec("CAP", "0.4")])

    assert "sum to 0.9" in caught.value.messages[0]
    assert not BundleMapping.objects.exists()
    assert not BundleComponent.objects.exists()


def test_component_listed_twice_is_refused():
    with pytest.raises(ValidationError) as caught:
        bundle_mapping_save(bundle_sku="KIT-1", components=[spec("TEE", "0.5"), spec("TEE", "0.5")])

    assert "TEE" in caught.value.messages[0]
    assert not BundleMapping.objects.exists()


@pytest.mark.parametrize(
    "components",
    [
        [],
        [spec("TEE", "0"), spec("CAP", "1")],
        [spec("TEE", "1", quantity=0)],
        [spec("TEE", "1.5")],
        [spec("  ", "1")],
        [spec("TEE", "0.5"), spec("TEE ", "0.5")],
        [spec("TEE", "0.3333335"), spec("CAP", "0.3333335"), spec("MUG", "0.333333")],
    ],
    ids=[
        "no components", "zero share", "zero quantity", "share above one", "blank sku",
        "same sku with a trailing space", "more decimals than stored",
    ],
)
def test_invalid_components_are_refused(components):
    with pytest.raises(ValidationError):
        bundle_mapping_save(bundle_sku="KIT-1", components=components)
    assert not BundleMapping.objects.exists()


def test_saving_again_replaces_the_components():
    bundle_mapping_save(bundle_sku="KIT-1", components=[spec("TEE", "0.5"), spec("CAP", "0.5")])

    bundle_mapping_save(bundle_sku="KIT-1", name="Renamed", components=[spec("HOODIE", "1")])

    assert BundleMapping.objects.get().name == "Renamed"
    assert stored_components("KIT-1") == [("HOODIE", 1, Decimal(1))]


def test_a_failing_replacement_leaves_the_old_mapping_intact():
    bundle_mapping_save(bundle_sku="KIT-1", name="Kit", components=[spec("TEE", "0.5"), spec("CAP", "0.5")])

    with pytest.raises(ValidationError):
        bundle_mapping_save(
            bundle_sku="KIT-1", name="Broken", is_active=False,
            components=[spec("HOODIE", "0.5"), spec("SCARF", "0.4")],
        )

    bundle = BundleMapping.objects.get()
    assert (bundle.name, bundle.is_active) == ("Kit", True)
    assert stored_components("KIT-1") == [("CAP", 1, Decimal("0.5")), ("TEE", 1, Decimal("0.5"))]


# --- connection_set_secrets ------------------------------------------------------------


def reloaded(connection: Connection) -> Connection:
    return Connection.objects.get(pk=connection.pk)


@pytest.mark.parametrize(
    ("credentials", "webhook_secret"), [(None, None), ({}, ""), (None, "")], ids=["none", "empty", "mixed"]
)
def test_blank_secrets_keep_what_is_stored(credentials, webhook_secret):
    conn = ConnectionFactory(credentials={"app_key": "k", "app_secret": "s"}, webhook_secret="whsec-old")

    connection_set_secrets(connection=reloaded(conn), credentials=credentials, webhook_secret=webhook_secret)

    stored = reloaded(conn)
    assert stored.credentials == {"app_key": "k", "app_secret": "s"}
    assert stored.webhook_secret == "whsec-old"


def test_new_credentials_merge_into_the_stored_ones():
    conn = ConnectionFactory(credentials={"app_key": "k", "app_secret": "s"}, webhook_secret="whsec-old")

    connection_set_secrets(
        connection=reloaded(conn), credentials={"app_secret": "s2", "access_token": "tok"}, webhook_secret=""
    )

    stored = reloaded(conn)
    assert stored.credentials == {"app_key": "k", "app_secret": "s2", "access_token": "tok"}
    assert stored.webhook_secret == "whsec-old"


def test_new_webhook_secret_replaces_the_old_one():
    conn = ConnectionFactory(credentials={"app_key": "k"}, webhook_secret="whsec-old")

    connection_set_secrets(connection=reloaded(conn), webhook_secret="whsec-new")

    stored = reloaded(conn)
    assert stored.webhook_secret == "whsec-new"
    assert stored.credentials == {"app_key": "k"}


# --- timeline_record ---------------------------------------------------------------------


def test_same_dedupe_key_records_once():
    mreturn = MarketplaceReturnFactory()
    record = {
        "system": System.TIKTOK_SHOP, "kind": TimelineKind.STATUS_CHANGED, "summary": "Buyer shipped",
        "marketplace_return": mreturn, "dedupe_key": f"tiktok:{mreturn.return_id}:BUYER_SHIPPED_ITEM",
    }

    first = timeline_record(**record)
    second = timeline_record(**record)

    assert first is not None and second is None
    assert ReturnEvent.objects.filter(marketplace_return=mreturn).count() == 1  # the transaction is still usable


def test_without_dedupe_key_every_record_is_kept():
    mreturn = MarketplaceReturnFactory()
    for _ in range(2):
        timeline_record(system=System.TIKTOK_SHOP, kind=TimelineKind.NOTE, summary="Called buyer",
                        marketplace_return=mreturn)

    assert ReturnEvent.objects.filter(marketplace_return=mreturn).count() == 2


def test_event_is_anchored_on_the_tiktok_ids_of_the_return():
    mreturn = MarketplaceReturnFactory(order_ref="577000000000042", return_id="403500000000042")
    portal = PortalReturnFactory(marketplace_return=mreturn, order_ref="", return_ref="")
    actor = UserFactory()
    when = timezone.now() - timedelta(hours=3)

    event = timeline_record(
        system=System.ZIGZAG, kind=TimelineKind.RECEIVED, summary="Received at DC", marketplace_return=mreturn,
        portal_return=portal, occurred_at=when, data={"location": "WH01"}, actor=actor,
    )

    event.refresh_from_db()
    assert (event.order_ref, event.return_ref) == ("577000000000042", "403500000000042")
    assert (event.marketplace_return, event.portal_return, event.actor) == (mreturn, portal, actor)
    assert event.occurred_at == when
    assert event.data == {"location": "WH01"}


def test_portal_only_event_uses_the_portal_refs():
    portal = PortalReturnFactory(
        marketplace_return=None, order=None, order_ref="577000000000099", return_ref="", tracking_number="1Z1"
    )

    event = timeline_record(system=System.ZIGZAG, kind=TimelineKind.CREATED, summary="Opened on portal",
                            portal_return=portal)

    event.refresh_from_db()
    assert (event.order_ref, event.return_ref) == ("577000000000099", "")
    assert event.marketplace_return is None


def test_event_must_belong_to_a_return():
    with pytest.raises(ValueError):
        timeline_record(system=System.TIKTOK_SHOP, kind=TimelineKind.NOTE, summary="Orphan")
    assert not ReturnEvent.objects.exists()
