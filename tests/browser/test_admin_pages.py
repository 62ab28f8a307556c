"""The admin and configuration pages as each role uses them in Chromium: bundles (a taken SKU
refused with a link, an edit previewed and confirmed, its history; finance reads it; an admin
restores a version), dead-letter Retry with its outcome, the inbound events viewer and its
filters, Disable and Mark as live asking first, exception settings with one Save, sync health
charts and the breakdown by type."""

from __future__ import annotations

from decimal import Decimal

import pytest

from exceptions_app.models import ExceptionTypeSetting
from returnsync import services
from returnsync.choices import InboundStatus
from returnsync.models import BundleMapping, Connection, InboundEvent
from returnsync.roles import Role
from returnsync.services import ComponentSpec
from tests.browser.test_login import log_in
from tests.exceptions_app.factories import ExceptionCaseFactory
from tests.factories import (
    DEMO_PASSWORD,
    ApiCallFactory,
    DeadLetterFactory,
    PortalConnectionFactory,
    UserFactory,
    ZigZagFixedLetterFactory,
)

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def _trio():
    return services.bundle_mapping_create(bundle_sku="KIT-TRIO", name="Trio", components=[
        ComponentSpec("TEE", 1, Decimal("0.5")), ComponentSpec("CAP", 1, Decimal("0.3")),
        ComponentSpec("MUG", 2, Decimal("0.2"))])


def test_ops_new_bundle_with_a_taken_sku_then_edits_it_through_the_preview(page, live_server, screenshot):
    UserFactory(username="ops-user", roles=[Role.OPERATIONS])
    bundle = _trio()
    log_in(page, live_server, "ops-user", DEMO_PASSWORD)

    page.goto(f"{live_server.url}/bundles/")
    page.get_by_role("link", name="New bundle").click()
    page.fill("#id_bundle_sku", "KIT-TRIO")
    page.fill("#id_components", "OTHER, 1, 1")
    page.get_by_role("button", name="Save").click()
    page.wait_for_load_state()
    refused = page.locator("[data-bundle-exists]")
    assert "already exists: nothing was saved" in refused.inner_text()
    assert sorted(bundle.components.values_list("component_sku", flat=True)) == ["CAP", "MUG", "TEE"]
    screenshot("ops-bundle-sku-taken")

    refused.get_by_role("link", name="Edit KIT-TRIO").click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/bundles/{bundle.pk}/edit/")
    page.fill("#id_components", "TEE, 1, 0.5\nCAP, 3, 0.3\nSOCK, 1, 0.2")
    page.get_by_role("button", name="Review changes").click()
    page.wait_for_load_state()
    changes = page.locator("[data-bundle-changes]")
    assert changes.locator('[data-component="SOCK"][data-change="added"]').is_visible()
    assert changes.locator('[data-component="MUG"][data-change="removed"]').is_visible()
    assert changes.locator('[data-component="CAP"][data-change="changed"]').is_visible()
    assert sorted(bundle.components.values_list("component_sku", flat=True)) == ["CAP", "MUG", "TEE"], \
        "the preview saves nothing"
    screenshot("ops-bundle-edit-preview")

    page.get_by_role("button", name="Save these changes").click()
    page.wait_for_load_state()
    assert page.get_by_text("Saved KIT-TRIO: 1 component added, 1 component changed, 1 component removed.").is_visible()
    assert sorted(bundle.components.values_list("component_sku", "quantity")) == [("CAP", 3), ("SOCK", 1), ("TEE", 1)]

    page.goto(f"{live_server.url}/bundles/{bundle.pk}/edit/")
    history = page.locator("[data-history]")
    assert history.locator("[data-version]").count() == 2
    assert "by ops-user" in history.inner_text() and "Component SOCK" in history.inner_text()
    assert history.get_by_text("Restore this version").count() == 0, "only an admin restores"
    screenshot("ops-bundle-history")


def test_finance_reads_a_bundle_history_and_an_admin_restores_a_version(page, live_server, screenshot):
    bundle = _trio()
    services.bundle_mapping_update(bundle=bundle, name="Trio", components=[ComponentSpec("TEE", 1, Decimal("1"))])
    UserFactory(username="finance-user", roles=[Role.FINANCE])
    UserFactory(username="admin-user", roles=[Role.ADMIN])

    log_in(page, live_server, "finance-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/bundles/{bundle.pk}/history/")
    assert page.locator("[data-history] [data-version]").count() == 2
    assert page.get_by_text("Restore this version").count() == 0
    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()

    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/bundles/{bundle.pk}/history/")
    oldest = page.locator("[data-history] [data-version]").last
    oldest.get_by_text("Restore this version").click()
    oldest.get_by_role("button", name="Yes, restore").click()
    page.wait_for_load_state()
    assert page.get_by_text("Restored KIT-TRIO to the version of").is_visible()
    assert sorted(bundle.components.values_list("component_sku", flat=True)) == ["CAP", "MUG", "TEE"]
    newest = page.locator("[data-history] [data-version]").first
    assert "by admin-user" in newest.inner_text() and "Restored the version of" in newest.inner_text()
    screenshot("admin-bundle-restored")


def test_admin_retries_dead_letters_on_sync_health_and_reads_the_outcome(page, live_server, screenshot):
    UserFactory(username="admin-user", roles=[Role.ADMIN])
    broken = DeadLetterFactory()
    fixed = ZigZagFixedLetterFactory()
    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/sync-health/")
    dead = page.locator('[data-table="dead-letters"]')
    assert dead.locator("tbody tr").count() == 2

    dead.locator("tr", has_text="names no return").get_by_role("button", name="Retry").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"Event {broken.pk} failed again (attempt 2): ValueError: event names no return").is_visible()
    assert page.locator('[data-table="dead-letters"] tbody tr').count() == 2, "still a dead letter: still listed"
    page.reload()
    assert page.locator('[data-table="dead-letters"] tbody tr').count() == 2, "the list was the truth"
    screenshot("admin-dead-letter-failed-again")

    page.locator('[data-table="dead-letters"] tr', has_text="database is locked").get_by_role("button", name="Retry").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"Event {fixed.pk} applied: processed on attempt 2.").is_visible()
    assert page.locator('[data-table="dead-letters"] tbody tr').count() == 1
    assert InboundEvent.objects.get(pk=fixed.pk).status == InboundStatus.PROCESSED
    screenshot("admin-dead-letter-applied")


def test_admin_filters_inbound_events_opens_one_and_retries_it(page, live_server, screenshot):
    UserFactory(username="admin-user", roles=[Role.ADMIN])
    event = DeadLetterFactory(headers={"Content-Type": "application/json", "X-Api-Key": "leaky-key-9"})
    DeadLetterFactory(error="KeyError: 'items'")
    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/inbound/")
    page.fill("input[name=error]", "names no return")
    page.locator("input[name=error]").press("Enter")
    page.wait_for_url("**error=names%20no%20return**")
    rows = page.locator("table tbody tr")
    rows.first.wait_for()
    assert rows.count() == 1
    rows.first.locator("a").first.click()
    page.wait_for_load_state()
    assert page.url.endswith(f"/inbound/{event.pk}/")
    headers = page.locator('[data-table="headers"]')
    assert "leaky-key-9" not in page.content() and "(redacted)" in headers.inner_text()
    assert '"event": "return.updated"' in page.locator("[data-body]").inner_text()
    screenshot("admin-inbound-event")
    page.get_by_role("button", name="Retry now").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"Event {event.pk} failed again (attempt 2)").is_visible()
    assert page.locator("[data-error]").inner_text() == "ValueError: event names no return"


def test_admin_disable_and_mark_as_live_ask_first(page, live_server, screenshot):
    UserFactory(username="admin-user", roles=[Role.ADMIN])
    conn = PortalConnectionFactory(name="Returns EU", is_enabled=True, is_sandbox=True)
    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/connections/{conn.pk}/")

    disable = page.locator('[data-confirm="disable"]')
    disable.get_by_text("Disable", exact=True).click()
    assert disable.get_by_role("button", name="Yes, disable").is_visible()
    assert Connection.objects.get(pk=conn.pk).is_enabled, "opening the question changes nothing"
    screenshot("admin-connection-disable-asks")
    disable.get_by_role("button", name="Yes, disable").click()
    page.wait_for_load_state()
    assert page.get_by_text(f"{conn}: disabled.").is_visible()

    live = page.locator('[data-confirm="live"]')
    live.get_by_text("Mark as live", exact=True).click()
    live.get_by_role("button", name="Yes, mark as live").click()
    page.wait_for_load_state()
    conn.refresh_from_db()
    assert (conn.is_enabled, conn.is_sandbox) == (False, False)
    history = page.locator("[data-history]").inner_text()
    assert "Enabled: yes → no" in history and "Sandbox: yes → no" in history and "by admin-user" in history

    assert page.locator("#id_cred_username").get_attribute("type") == "text"
    assert page.locator("#id_cred_password").get_attribute("type") == "password"
    page.fill("#id_cred_password", "new-zz-pass")
    page.get_by_role("button", name="Save secrets").click()
    page.wait_for_load_state()
    assert page.get_by_text("Saved: Password (stored encrypted, never shown).").is_visible()
    assert "new-zz-pass" not in page.content()
    assert "Secrets set: password" in page.locator("[data-history]").inner_text()


def test_admin_saves_every_exception_setting_with_one_save(page, live_server, screenshot):
    UserFactory(username="admin-user", roles=[Role.ADMIN])
    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/exceptions/settings/")
    page.fill("#id_refund_lag-sla_0", "2")
    page.select_option("#id_refund_lag-sla_1", "days")
    page.fill("#id_portal_bypass-sla_0", "0")
    page.get_by_role("button", name="Save all settings").click()
    page.wait_for_load_state()
    assert page.locator("[data-settings-errors]").is_visible()
    assert page.locator('[data-type="portal_bypass"] .field-error').inner_text() == "At least 1 minute."
    assert not ExceptionTypeSetting.objects.exists(), "nothing saved while a field is wrong"
    assert page.locator("#id_refund_lag-sla_0").input_value() == "2", "what was typed is kept"
    screenshot("admin-settings-error")

    page.fill("#id_portal_bypass-sla_0", "45")
    page.select_option("#id_portal_bypass-sla_1", "minutes")
    page.get_by_role("button", name="Save all settings").click()
    page.wait_for_load_state()
    assert page.get_by_text("Saved:").is_visible()
    stored = {s.type_code: s.sla_minutes for s in ExceptionTypeSetting.objects.all()}
    assert stored == {"refund_lag": 2880, "portal_bypass": 45}
    assert page.locator("#id_refund_lag-sla_0").input_value() == "2"
    assert page.locator("#id_refund_lag-sla_1").input_value() == "days"

    page.locator('[data-type="refund_lag"]').get_by_role("link", name="History").click()
    page.wait_for_load_state()
    assert "SLA: 2 days" in page.locator("[data-history]").inner_text()
    screenshot("admin-settings-history")


def test_admin_reads_sync_health_charts_and_the_breakdown(page, live_server, screenshot):
    UserFactory(username="admin-user", roles=[Role.ADMIN])
    conn = PortalConnectionFactory(name="Charted", last_success_at=None)
    for status in (200, 200, 200, 503):
        ApiCallFactory(connection=conn, http_status=status)
    ExceptionCaseFactory(type_code="refund_lag", owner_role=Role.FINANCE)
    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/sync-health/")
    chart = page.locator(f'[data-charts="{conn.pk}"]')
    assert chart.locator('[data-chart="calls"] g.hour').count() == 24
    assert chart.locator('[data-chart="calls"] g.hour title').last.text_content().endswith("4 calls, 1 failed")
    assert "not reported by ZigZag" in chart.locator('[data-field="quota"]').inner_text()
    breakdown = page.locator("[data-breakdown]")
    assert breakdown.locator('[data-type="refund_lag"] [data-count]').inner_text() == "1"
    screenshot("admin-sync-health-charts")
    breakdown.locator('[data-type="refund_lag"]').click()
    page.wait_for_load_state()
    assert "type_code=refund_lag" in page.url


def test_other_roles_cannot_open_the_admin_pages(page, live_server):
    UserFactory(username="cx-user", roles=[Role.CX])
    event = DeadLetterFactory()
    log_in(page, live_server, "cx-user", DEMO_PASSWORD)
    for path in (f"/inbound/{event.pk}/", "/exceptions/settings/", "/sync-health/",
                 f"/connections/{event.connection_id}/history/"):
        response = page.goto(f"{live_server.url}{path}")
        assert response.status == 403, path
        assert page.get_by_text("have access to this page").count() >= 1
    assert BundleMapping.objects.count() == 0
