"""Operations: bundle mappings (form, delete, CSV import/export) and warehouse mappings."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.files.uploadedfile import SimpleUploadedFile
from django.urls import reverse

from returnsync import services
from returnsync.models import BundleComponent, BundleMapping, WarehouseMapping
from returnsync.roles import Role
from tests.factories import (
    BundleComponentFactory,
    BundleMappingFactory,
    PortalConnectionFactory,
    WarehouseMappingFactory,
)

pytestmark = pytest.mark.django_db

GOOD_CSV = (
    "bundle_sku,name,is_active,component_sku,quantity,price_share\n"
    "KIT-1,Starter kit,yes,TEE-1,1,0.6\n"
    "KIT-1,Starter kit,yes,CAP-1,2,0.4\n"
    "KIT-2,Duo,no,MUG-1,2,1\n"
)


def upload(client, text: str):
    return client.post(
        reverse("bundle_import"),
        {"file": SimpleUploadedFile("bundles.csv", text.encode(), "text/csv")},
    )


def state():
    return sorted(
        BundleComponent.objects.values_list(
            "bundle__bundle_sku", "bundle__is_active", "component_sku", "quantity", "price_share"
        )
    )


def test_import_creates_bundles_and_a_second_import_changes_nothing(client_for_role):
    client = client_for_role(Role.OPERATIONS)

    first = upload(client, GOOD_CSV)
    assert first.status_code == 302
    before = state()
    ids = list(BundleComponent.objects.order_by("id").values_list("id", flat=True))
    assert before == [
        ("KIT-1", True, "CAP-1", 2, Decimal("0.4")),
        ("KIT-1", True, "TEE-1", 1, Decimal("0.6")),
        ("KIT-2", False, "MUG-1", 2, Decimal(1)),
    ]

    result = services.bundle_mappings_import_csv(content=GOOD_CSV)
    assert (result.created, result.updated, result.unchanged) == (0, 0, 2)
    assert list(BundleComponent.objects.order_by("id").values_list("id", flat=True)) == ids


def test_import_with_one_bad_row_saves_nothing_and_names_the_row(client_for_role):
    bad = (
        GOOD_CSV
        + "KIT-3,Trio,yes,SOCK-1,zero,0.5\n"
        + "KIT-4,Bad shares,yes,A,1,0.5\nKIT-4,Bad shares,yes,B,1,0.4\n"
    )

    response = upload(client_for_role(Role.OPERATIONS), bad)

    assert response.status_code == 400
    assert BundleMapping.objects.count() == 0
    errors = [(e.row, e.message) for e in response.context["result"].errors]
    assert errors[0][0] == 5 and "quantity 'zero'" in errors[0][1]
    assert errors[1][0] == 6 and "sum to 1" in errors[1][1]
    assert 'data-row="5"' in response.content.decode()


def test_import_rejects_a_file_without_the_columns(client_for_role):
    response = upload(client_for_role(Role.OPERATIONS), "sku,qty\nA,1\n")
    assert response.status_code == 400
    assert "Missing column(s)" in response.content.decode()


def test_import_rejects_a_non_utf8_file():
    result = services.bundle_mappings_import_csv(content=b"\xff\xfe\x00bundle")
    assert not result.ok and "UTF-8" in result.errors[0].message


def test_export_round_trips_through_import(client_for_role):
    bundle = BundleMappingFactory(bundle_sku="KIT-9")
    BundleComponentFactory(bundle=bundle, component_sku="A", price_share=Decimal("0.25"))
    BundleComponentFactory(
        bundle=bundle, component_sku="B", quantity=3, price_share=Decimal("0.75")
    )

    exported = b"".join(
        client_for_role(Role.FINANCE).get(reverse("bundle_export")).streaming_content
    ).decode()

    assert exported.splitlines()[0] == ",".join(services.BUNDLE_CSV_HEADER)
    result = services.bundle_mappings_import_csv(content=exported)
    assert (result.ok, result.unchanged, result.created, result.updated) == (True, 1, 0, 0)


def test_bundle_form_creates_and_edits_and_rejects_shares_not_summing_to_one(client_for_role):
    client = client_for_role(Role.OPERATIONS)

    bad = client.post(
        reverse("bundle_create"),
        {"bundle_sku": "KIT-5", "components": "A, 1, 0.5\nB, 1, 0.3", "is_active": "on"},
    )
    assert bad.status_code == 400 and "must sum to 1" in bad.content.decode()
    assert not BundleMapping.objects.exists()

    ok = client.post(
        reverse("bundle_create"),
        {
            "bundle_sku": "KIT-5",
            "name": "Pair",
            "components": "A, 1, 0.5\nB, 1, 0.5",
            "is_active": "on",
        },
    )
    assert ok.status_code == 302
    bundle = BundleMapping.objects.get(bundle_sku="KIT-5")

    edit_page = client.get(reverse("bundle_edit", args=[bundle.pk])).content.decode()
    assert "A, 1, 0.5" in edit_page
    edit = {"bundle_sku": "KIT-5", "name": "Pair", "components": "A, 2, 1"}
    preview = client.post(reverse("bundle_edit", args=[bundle.pk]), edit)
    assert preview.status_code == 200 and "Save these changes" in preview.content.decode()
    bundle.refresh_from_db()
    assert bundle.is_active is True, "the first Save only shows what would change"
    version = preview.context["version"]
    client.post(reverse("bundle_edit", args=[bundle.pk]), {**edit, "confirm": "yes", "version": version})
    bundle.refresh_from_db()
    assert bundle.is_active is False
    assert list(bundle.components.values_list("component_sku", "quantity")) == [("A", 2)]


def _kit(sku="KIT-7"):
    bundle = BundleMappingFactory(bundle_sku=sku, name="Trio")
    BundleComponentFactory(bundle=bundle, component_sku="TEE", quantity=1, price_share=Decimal("0.5"))
    BundleComponentFactory(bundle=bundle, component_sku="CAP", quantity=1, price_share=Decimal("0.3"))
    BundleComponentFactory(bundle=bundle, component_sku="MUG", quantity=2, price_share=Decimal("0.2"))
    return bundle


def _components(bundle):
    return sorted(bundle.components.values_list("component_sku", "quantity", "price_share"))


def test_new_bundle_with_an_existing_sku_is_refused_with_a_link_to_edit_it(client_for_role):
    bundle = _kit()
    before = _components(bundle)
    response = client_for_role(Role.OPERATIONS).post(
        reverse("bundle_create"), {"bundle_sku": " KIT-7 ", "components": "OTHER, 1, 1", "is_active": "on"})
    page = response.content.decode()
    assert response.status_code == 400
    assert "A bundle with SKU <code>KIT-7</code> already exists" in page
    assert f'href="{reverse("bundle_edit", args=[bundle.pk])}"' in page
    assert _components(bundle) == before, "the existing bundle's components are untouched"
    assert BundleMapping.objects.count() == 1


def test_creating_refuses_a_taken_sku_in_the_service_too():
    bundle = _kit()
    with pytest.raises(services.BundleExists) as refused:
        services.bundle_mapping_create(bundle_sku="KIT-7", components=[services.ComponentSpec("X", 1, Decimal(1))])
    assert refused.value.bundle == bundle
    assert [c[0] for c in _components(bundle)] == ["CAP", "MUG", "TEE"]


def test_editing_shows_each_component_added_removed_or_changed_before_saving(client_for_role):
    bundle = _kit()
    client = client_for_role(Role.OPERATIONS)
    edit = {"bundle_sku": "KIT-7", "name": "Trio+", "is_active": "on",
            "components": "TEE, 1, 0.5\nCAP, 3, 0.3\nSOCK, 1, 0.2"}
    preview = client.post(reverse("bundle_edit", args=[bundle.pk]), edit)
    page = preview.content.decode()
    assert preview.status_code == 200
    assert 'data-component="SOCK" data-change="added"' in page
    assert 'data-component="MUG" data-change="removed"' in page
    assert 'data-component="CAP" data-change="changed"' in page
    assert 'data-component="TEE"' not in page, "an unchanged component is not listed"
    assert 'data-field="name"' in page
    assert [c[0] for c in _components(bundle)] == ["CAP", "MUG", "TEE"], "nothing saved before the confirmation"

    done = client.post(reverse("bundle_edit", args=[bundle.pk]),
                       {**edit, "confirm": "yes", "version": preview.context["version"]}, follow=True)
    assert "1 component added, 1 component changed, 1 component removed, name changed" in done.content.decode()
    assert _components(bundle) == [("CAP", 3, Decimal("0.3")), ("SOCK", 1, Decimal("0.2")), ("TEE", 1, Decimal("0.5"))]


def test_a_confirmation_of_a_version_changed_meanwhile_shows_the_changes_again(client_for_role):
    bundle = _kit()
    client = client_for_role(Role.OPERATIONS)
    edit = {"bundle_sku": "KIT-7", "name": "Trio", "is_active": "on", "components": "TEE, 1, 1"}
    preview = client.post(reverse("bundle_edit", args=[bundle.pk]), edit)
    services.bundle_mapping_update(bundle=bundle, name="Trio", components=[
        services.ComponentSpec("TEE", 1, Decimal("0.5")), services.ComponentSpec("CAP", 1, Decimal("0.5"))])
    again = client.post(reverse("bundle_edit", args=[bundle.pk]),
                        {**edit, "confirm": "yes", "version": preview.context["version"]})
    assert again.status_code == 200 and "data-stale" in again.content.decode()
    assert [c[0] for c in _components(bundle)] == ["CAP", "TEE"], "not saved onto a version nobody previewed"


def test_an_edit_that_changes_nothing_saves_nothing(client_for_role):
    bundle = _kit()
    versions = bundle.history.count()
    response = client_for_role(Role.OPERATIONS).post(reverse("bundle_edit", args=[bundle.pk]), {
        "bundle_sku": "KIT-7", "name": "Trio", "is_active": "on",
        "components": "TEE, 1, 0.5\nCAP, 1, 0.3\nMUG, 2, 0.2"}, follow=True)
    assert "Nothing to save" in response.content.decode()
    assert bundle.history.count() == versions


def test_bundle_form_rejects_unparseable_lines(client_for_role):
    response = client_for_role(Role.OPERATIONS).post(
        reverse("bundle_create"), {"bundle_sku": "K", "components": "A; 1; 1"}
    )
    assert response.status_code == 400 and "Line 1" in response.content.decode()


def test_bundle_delete_asks_then_deletes(client_for_role):
    bundle = BundleMappingFactory()
    client = client_for_role(Role.OPERATIONS)
    assert client.get(reverse("bundle_delete", args=[bundle.pk])).status_code == 200
    assert BundleMapping.objects.filter(pk=bundle.pk).exists()
    assert client.post(reverse("bundle_delete", args=[bundle.pk])).status_code == 302
    assert not BundleMapping.objects.filter(pk=bundle.pk).exists()


def test_finance_sees_bundles_without_edit_links(client_for_role):
    bundle = BundleMappingFactory()
    finance = client_for_role(Role.FINANCE).get(reverse("bundle_list")).content.decode()
    ops = client_for_role(Role.OPERATIONS).get(reverse("bundle_list")).content.decode()
    edit = reverse("bundle_edit", args=[bundle.pk])
    assert edit not in finance and reverse("bundle_import") not in finance
    assert edit in ops and reverse("bundle_import") in ops


def test_warehouse_mapping_create_makes_it_the_only_default(client_for_role):
    conn = PortalConnectionFactory()
    old = WarehouseMappingFactory(connection=conn, is_default=True)
    client = client_for_role(Role.OPERATIONS)

    response = client.post(
        reverse("warehouse_create"),
        {
            "connection": conn.pk,
            "location_code": "LA-1",
            "tiktok_warehouse_id": "7001",
            "is_default": "on",
        },
    )

    assert response.status_code == 302
    old.refresh_from_db()
    assert old.is_default is False
    assert WarehouseMapping.objects.get(location_code="LA-1").is_default is True


def test_warehouse_mapping_duplicate_code_is_a_form_error(client_for_role):
    existing = WarehouseMappingFactory()
    response = client_for_role(Role.OPERATIONS).post(
        reverse("warehouse_create"),
        {
            "connection": existing.connection_id,
            "location_code": existing.location_code,
            "tiktok_warehouse_id": "1",
        },
    )
    assert response.status_code == 400 and "already mapped" in response.content.decode()


def test_warehouse_mapping_edit_and_delete(client_for_role):
    mapping = WarehouseMappingFactory(name="Old name")
    client = client_for_role(Role.OPERATIONS)
    client.post(
        reverse("warehouse_edit", args=[mapping.pk]),
        {
            "connection": mapping.connection_id,
            "location_code": mapping.location_code,
            "tiktok_warehouse_id": "9999",
            "name": "New name",
        },
    )
    mapping.refresh_from_db()
    assert (mapping.tiktok_warehouse_id, mapping.name) == ("9999", "New name")
    client.post(reverse("warehouse_delete", args=[mapping.pk]))
    assert not WarehouseMapping.objects.exists()
    assert client.get(reverse("warehouse_edit", args=[mapping.pk])).status_code == 404
