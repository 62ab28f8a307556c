"""Finance finds a partial refund in its queue, claims it in place, reads the per-line
amounts, offers them in Seller Center and resolves it with the amount refunded."""
from __future__ import annotations

import pytest
from playwright.sync_api import expect

from exceptions_app.choices import ExceptionStatus
from exceptions_app.models import ExceptionCase
from returnsync.roles import Role
from tests.browser.test_login import log_in
from tests.exceptions_app.factories import ExceptionCaseFactory, partial_refund_case
from tests.factories import DEMO_PASSWORD, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def test_finance_claims_and_resolves_a_partial_refund(page, live_server, screenshot):
    UserFactory(username="fiona", first_name="Fiona", roles=[Role.FINANCE])
    case = partial_refund_case()
    ExceptionCaseFactory(owner_role=Role.CX, title="A CX case finance does not see")

    log_in(page, live_server, "fiona", DEMO_PASSWORD)
    page.get_by_role("navigation", name="Main").get_by_role("link", name="Exceptions", exact=True).click()
    page.wait_for_load_state()

    row = page.locator(f"#exception-{case.pk}")
    assert row.is_visible(), "finance lands on its own queue"
    assert page.get_by_text("A CX case finance does not see").count() == 0
    assert page.locator('[data-count="open"]').inner_text() == "1"

    url_before = page.url
    row.get_by_role("button", name="Claim").click()
    page.locator(f"#exception-{case.pk}").get_by_role("button", name="Release").wait_for()
    assert page.url == url_before, "claimed in place, without a reload or a new URL"
    assert page.locator('[data-count="mine"]').inner_text() == "1"
    assert page.locator('[data-count="open"]').inner_text() == "0"
    assert "You claimed" in page.locator("#queue-message").inner_text()

    page.locator(f"#exception-{case.pk}").get_by_role("link", name=case.title).click()
    page.wait_for_load_state()
    partial = page.locator("#partial-refund")
    assert "1 of 2 received" in partial.inner_text() and "graded damaged" in partial.inner_text()
    assert page.locator('[data-field="refund-due"]').inner_text() == "20.00 USD"

    resolve = page.get_by_role("form", name="Resolve")
    resolve.get_by_label("Resolution", exact=True).select_option("refunded_manually")
    resolve.get_by_label("Amount actually refunded (USD)", exact=True).fill("20.00")
    resolve.get_by_label("Note", exact=True).fill("Offered 20.00 USD in Seller Center")
    resolve.get_by_role("button", name="Resolve").click()
    page.locator('[data-field="resolved-amount"]').wait_for()
    assert "Resolved." in page.locator("#exception-panel").inner_text()
    activity = page.locator(".activity-log").inner_text()
    assert "Claimed" in activity and "Resolved" in activity and "Offered 20.00 USD" in activity
    screenshot("exception-partial-refund-resolved")

    case.refresh_from_db()
    assert case.status == ExceptionStatus.RESOLVED and str(case.resolved_amount) == "20.00"
    assert ExceptionCase.objects.get(pk=case.pk).closed_by.username == "fiona"


def test_finance_bulk_claims_from_the_queue_and_the_counters_follow(page, live_server, screenshot):
    UserFactory(username="fiona", first_name="Fiona", roles=[Role.FINANCE])
    cases = ExceptionCaseFactory.create_batch(3, owner_role=Role.FINANCE, type_code="refund_lag")

    log_in(page, live_server, "fiona", DEMO_PASSWORD)
    page.goto(f"{live_server.url}/exceptions/")
    for case in cases[:2]:
        page.locator(f"#exception-{case.pk}").get_by_role("checkbox").check()
    page.locator("#bulk-form").get_by_role("button", name="Claim").click()

    page.get_by_text("2 of 2 done.").wait_for()
    # (a locator wait: wait_for_function evaluates a string, which the page's CSP forbids)
    expect(page.locator('[data-count="mine"]')).to_have_text("2")
    assert page.locator('[data-count="open"]').inner_text() == "1"
    page.locator(f"#exception-{cases[0].pk}").get_by_role("button", name="Release").wait_for()
    assert page.locator(f"#exception-{cases[2].pk}").get_by_role("button", name="Claim").is_visible()
    assert set(ExceptionCase.objects.filter(assignee__username="fiona").values_list("pk", flat=True)) == {
        cases[0].pk, cases[1].pk}
    screenshot("exception-queue-finance")
