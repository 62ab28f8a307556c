"""A person logs in as each role and lands on a dashboard showing that role's navigation."""
from __future__ import annotations

import pytest

from returnsync.roles import NAVIGATION, Role
from tests.factories import DEMO_PASSWORD, MarketplaceReturnFactory, UserFactory

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]


def log_in(page, live_server, username: str, password: str) -> None:
    page.goto(f"{live_server.url}/")
    assert "/accounts/login/" in page.url, "an anonymous visitor is sent to the login page"
    page.fill("#id_username", username)
    page.fill("#id_password", password)
    page.get_by_role("button", name="Log in").click()
    page.wait_for_load_state()


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_each_role_logs_in_and_sees_its_navigation(page, live_server, screenshot, role):
    UserFactory(username=f"demo-{role.value.lower()}", first_name="Demo", roles=[role])
    MarketplaceReturnFactory(return_id="403500000000777")

    log_in(page, live_server, f"demo-{role.value.lower()}", DEMO_PASSWORD)

    assert page.url.rstrip("/") == live_server.url, "after login the user lands on their home page"
    nav = page.locator("nav")
    for item in NAVIGATION:
        link = nav.get_by_role("link", name=item.label, exact=True)
        if role in item.roles:
            assert link.count() == 1, f"{role.value} should see {item.label}"
        else:
            assert link.count() == 0, f"{role.value} must not see {item.label}"
    screenshot(f"home-{role.value.lower()}")

    page.get_by_role("button", name="Log out").click()
    page.wait_for_load_state()
    assert "/accounts/login/" in page.url


def test_wrong_password_is_refused_with_a_message(page, live_server):
    UserFactory(username="casey", roles=[Role.CX])

    log_in(page, live_server, "casey", "not-the-password")

    assert "/accounts/login/" in page.url
    assert page.get_by_text("Please enter a correct username and password").is_visible()
