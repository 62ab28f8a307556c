"""Change history of bundles, warehouse mappings and connections: who, when, what changed,
on each object's page; an admin restores a version (a new, audited change); a connection's
history never holds or shows a credential."""

from __future__ import annotations

from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import connection as db
from django.urls import reverse

from returnsync import services
from returnsync.models import BundleMapping, Connection, WarehouseMapping
from returnsync.roles import Role
from returnsync.services import ComponentSpec
from tests.factories import ConnectionFactory, PortalConnectionFactory, WarehouseMappingFactory

pytestmark = pytest.mark.django_db


def _bundle(user):
    bundle = services.bundle_mapping_create(bundle_sku="KIT-H", name="Duo", actor=user, components=[
        ComponentSpec("TEE", 1, Decimal("0.6")), ComponentSpec("CAP", 1, Decimal("0.4"))])
    services.bundle_mapping_update(bundle=bundle, name="Duo", actor=user, components=[
        ComponentSpec("TEE", 2, Decimal("0.6")), ComponentSpec("MUG", 1, Decimal("0.4"))])
    return bundle


def test_a_bundle_page_lists_who_changed_which_component(client_for_role, user_for_role):
    ops = user_for_role(Role.OPERATIONS)
    bundle = _bundle(ops)
    page = client_for_role(Role.OPERATIONS).get(reverse("bundle_edit", args=[bundle.pk])).content.decode()
    history = page[page.index("data-history"):]
    assert history.count("data-version=") == 2
    assert "by <span data-who>operations-user</span>" in history
    assert 'Component CAP:</span> <span class="change-before">1 × share 0.4</span> → <span class="change-removed">removed' \
        in history
    assert 'Component MUG:</span> <span class="change-added">1 × share 0.4' in history
    assert 'Component TEE:</span> <span class="change-before">1 × share 0.6</span> → <span class="change-added">2 × share 0.6' \
        in history
    assert "Restore this version" not in history, "operations sees the history; only an admin restores"


def test_an_admin_restores_a_bundle_version_as_a_new_change(client_for_role, user_for_role):
    bundle = _bundle(user_for_role(Role.OPERATIONS))
    first = bundle.history.order_by("history_id").first()
    client = client_for_role(Role.ADMIN)
    page = client.get(reverse("bundle_history", args=[bundle.pk])).content.decode()
    assert reverse("bundle_restore", args=[first.history_id]) in page
    done = client.post(reverse("bundle_restore", args=[first.history_id]),
                       {"next": reverse("bundle_edit", args=[bundle.pk])}, follow=True)
    assert sorted(bundle.components.values_list("component_sku", "quantity")) == [("CAP", 1), ("TEE", 1)]
    newest = bundle.history.order_by("-history_id").first()
    assert newest.history_user.get_username() == "admin-user"
    assert newest.history_change_reason.startswith("Restored the version of")
    body = done.content.decode()
    assert "Restored KIT-H to the version of" in body and "data-reason" in body
    assert bundle.history.count() == 3


def test_restore_is_refused_to_operations_and_for_a_deletion(client_for_role, user_for_role):
    bundle = _bundle(user_for_role(Role.OPERATIONS))
    first = bundle.history.order_by("history_id").first()
    assert client_for_role(Role.OPERATIONS).post(reverse("bundle_restore", args=[first.history_id])).status_code == 403
    with pytest.raises(PermissionDenied):
        services.bundle_mapping_restore(history_id=first.history_id, actor=user_for_role(Role.OPERATIONS))
    services.bundle_mapping_delete(bundle=BundleMapping.objects.get(pk=bundle.pk))
    gone = BundleMapping.history.filter(history_type="-").get()
    assert [c[0] for c in gone.components] == ["MUG", "TEE"], "the deleted version keeps its components"
    response = client_for_role(Role.ADMIN).post(reverse("bundle_restore", args=[first.history_id]), follow=True)
    assert "Not restored" in response.content.decode()
    assert client_for_role(Role.ADMIN).post(reverse("bundle_restore", args=[99999])).status_code == 404


def test_warehouse_mapping_history_and_restore(client_for_role, user_for_role):
    mapping = WarehouseMappingFactory(location_code="DC1", tiktok_warehouse_id="7001", is_default=True)
    other = services.warehouse_mapping_save(connection=mapping.connection, location_code="DC2",
                                            tiktok_warehouse_id="7002", is_default=True,
                                            actor=user_for_role(Role.OPERATIONS))
    mapping.refresh_from_db()
    assert not mapping.is_default
    page = client_for_role(Role.OPERATIONS).get(reverse("warehouse_edit", args=[mapping.pk])).content.decode()
    assert "DC2 became the default" in page and 'Default:</span> <span class="change-before">yes' in page
    first = mapping.history.order_by("history_id").first()
    client_for_role(Role.ADMIN).post(reverse("warehouse_restore", args=[first.history_id]))
    mapping.refresh_from_db()
    other.refresh_from_db()
    assert mapping.is_default and not other.is_default, "restoring the default demotes the other one, recorded"
    assert WarehouseMapping.history.filter(id=other.pk, history_change_reason="DC1 became the default").exists()


def test_a_connection_history_never_holds_a_credential(client_for_role, user_for_role):
    conn = ConnectionFactory(credentials={"app_key": "k-1", "app_secret": "SECRET-HIST-1"}, webhook_secret="WH-HIST")
    admin = user_for_role(Role.ADMIN)
    services.connection_set_secrets(connection=conn, credentials={"app_secret": "SECRET-HIST-2"},
                                    webhook_secret="WH-HIST-2", actor=admin)
    services.connection_toggle(connection=conn, enabled=False, actor=admin)
    columns = {f.name for f in Connection.history.model._meta.get_fields()}
    assert not columns & {"credentials", "webhook_secret"}, "no column to hold them"
    with db.cursor() as cursor:
        cursor.execute(f"SELECT * FROM {Connection.history.model._meta.db_table}")
        dumped = repr(cursor.fetchall())
    assert "SECRET-HIST" not in dumped and "WH-HIST" not in dumped
    page = client_for_role(Role.ADMIN).get(reverse("connection_history", args=[conn.pk])).content.decode()
    assert "Secrets set: app_secret, webhook secret" in page
    assert 'Enabled:</span> <span class="change-before">yes</span> → <span class="change-added">no' in page
    assert "SECRET-HIST" not in page


def test_health_stamps_and_token_refreshes_add_no_version():
    conn = PortalConnectionFactory()
    versions = conn.history.count()
    conn.credentials = {**conn.credentials, "token": "jwt"}
    conn.save(update_fields=["credentials"])  # what the ZigZag client does with its token
    Connection.objects.filter(pk=conn.pk).update(last_error="x")
    services.connection_test_run(connection=conn)
    assert conn.history.count() == versions


def test_restoring_a_connection_puts_back_its_settings_not_its_secrets(client_for_role, user_for_role):
    conn = ConnectionFactory(name="Shop A", poll_interval_seconds=300,
                             credentials={"app_key": "k", "app_secret": "s-1"})
    first = conn.history.get()
    conn.poll_interval_seconds, conn.name = 60, "Shop B"
    conn.save()
    services.connection_set_secrets(connection=conn, credentials={"app_secret": "s-2"})
    client_for_role(Role.ADMIN).post(reverse("connection_restore", args=[first.history_id]))
    conn.refresh_from_db()
    assert (conn.name, conn.poll_interval_seconds) == ("Shop A", 300)
    assert conn.credentials["app_secret"] == "s-2", "secrets are never restored from history"
    assert client_for_role(Role.OPERATIONS).get(reverse("connection_history", args=[conn.pk])).status_code == 403
