"""Access to every page, generated from NAVIGATION × role: the menu and the views read
the same table, so a page a role can't see in the menu must refuse it too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from returnsync.roles import NAVIGATION, Role
from tests.factories import MarketplaceReturnFactory, UserFactory

pytestmark = pytest.mark.django_db

# (url name, roles allowed) for every page: each NAVIGATION entry, plus the return detail,
# which serves the same people as the return list.
PAGES = [(item.url_name, item.roles) for item in NAVIGATION] + [
    ("return_detail", next(item.roles for item in NAVIGATION if item.url_name == "return_list"))
]


def url_for(url_name: str) -> str:
    if url_name == "return_detail":
        return reverse(url_name, args=[MarketplaceReturnFactory().pk])
    return reverse(url_name)


@pytest.mark.parametrize("url_name", [name for name, _ in PAGES])
def test_anonymous_is_sent_to_login(client_for_role, url_name):
    url = url_for(url_name)
    response = client_for_role(None).get(url)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))
    assert "next=" in response.url


@pytest.mark.parametrize(
    ("url_name", "role", "expected"),
    [
        pytest.param(name, role, 200 if role in allowed else 403, id=f"{name}-{role.value}")
        for name, allowed in PAGES
        for role in Role
    ],
)
def test_each_role_gets_exactly_its_pages(client_for_role, url_name, role, expected):
    response = client_for_role(role).get(url_for(url_name))
    assert response.status_code == expected
    if expected == 403:
        assert b"have access to this page" in response.content  # the friendly 403 page


@pytest.mark.parametrize("url_name", [name for name, _ in PAGES])
def test_a_user_without_any_role_is_refused(client, url_name):
    client.force_login(UserFactory(username="no-role"))
    assert client.get(url_for(url_name)).status_code == 403


@pytest.mark.parametrize("url_name", [name for name, _ in PAGES])
def test_superuser_counts_as_admin(client, url_name):
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    assert client.get(url_for(url_name)).status_code == 200


def test_every_role_is_refused_somewhere_or_is_admin():
    """Guards the generator: if every page allowed every role the 403 cases would vanish."""
    refused = {role for _, allowed in PAGES for role in Role if role not in allowed}
    assert refused == {Role.CX, Role.FINANCE, Role.OPERATIONS}


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_menu_shows_exactly_the_pages_the_role_may_open(client_for_role, role):
    content = client_for_role(role).get(reverse("home")).content.decode()
    menu = content[content.index('<nav class="mainnav"') :]
    menu = menu[: menu.index("</nav>")]
    for item in NAVIGATION:
        shown = f'href="{reverse(item.url_name)}"' in menu and f">{item.label}</a>" in menu
        assert shown == (role in item.roles), item.url_name
