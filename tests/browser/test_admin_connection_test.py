"""An admin opens a connection and presses "Test connection": the live result appears in
place (htmx), first working, then failing readably after a wrong secret is saved in the
connector's own "App secret" field; the health badge follows each result (Failing after the
failed test, Healthy again once fixed) and says why on hover."""

from __future__ import annotations

import pytest

from connectors.tiktok_shop.sandbox import api as sandbox
from returnsync.roles import Role
from tests.browser.test_login import log_in
from tests.factories import DEMO_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_admin_tests_a_connection(page, live_server, screenshot):
    UserFactory(username="admin-user", roles=[Role.ADMIN])
    conn = sandbox.connect(name="Browser shop", server_url=live_server.url)

    log_in(page, live_server, "admin-user", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/connections/")
    page.get_by_role("link", name="Browser shop").click()
    assert (
        page.locator("[data-webhook-url]")
        .input_value()
        .endswith(f"/webhooks/tiktok/{conn.webhook_slug}/")
    )

    page.get_by_role("button", name="Test connection").click()
    result = page.locator("#test-result[data-ok]")
    result.wait_for()
    assert result.get_attribute("data-ok") == "true"
    assert "Connection works" in result.inner_text() and "Browser shop" in result.inner_text()
    assert page.url.endswith(f"/connections/{conn.pk}/"), "the result is swapped in, the page stays"
    badge = page.locator("#connection-health [data-health]")
    assert badge.get_attribute("data-health") == "Healthy"
    screenshot("admin-connection-test-ok")

    right_secret = conn.credentials["app_secret"]
    assert page.locator("#id_cred_app_secret").get_attribute("type") == "password"
    assert page.locator("#id_cred_app_secret").input_value() == "", "never filled back"
    page.fill("#id_cred_app_secret", "not-the-secret")
    page.get_by_role("button", name="Save secrets").click()
    page.wait_for_load_state()
    assert page.get_by_text("Saved: App secret (stored encrypted, never shown).").is_visible()
    assert "not-the-secret" not in page.content()

    page.get_by_role("button", name="Test connection").click()
    page.locator('#test-result[data-ok="false"]').wait_for()
    assert "Connection failed" in page.locator("#test-result").inner_text()
    page.locator('#connection-health [data-health="Failing"]').wait_for()
    assert "the connection test failed" in page.locator("#connection-health [data-health]").get_attribute("title")
    screenshot("admin-connection-test-failed")

    page.fill("#id_cred_app_secret", right_secret)
    page.get_by_role("button", name="Save secrets").click()
    page.wait_for_load_state()
    assert page.locator("#connection-health [data-health]").get_attribute("data-health") == "Failing"
    page.get_by_role("button", name="Test connection").click()
    page.locator('#test-result[data-ok="true"]').wait_for()
    page.locator('#connection-health [data-health="Healthy"]').wait_for()
    assert "Healthy" in page.locator("#connection-health").inner_text(), "fixed: not Failing any more"
    screenshot("admin-connection-test-fixed")
