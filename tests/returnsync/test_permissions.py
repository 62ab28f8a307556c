"""Access to every page, generated from NAVIGATION × role: the menu and the views read
the same table, so a page a role can't see in the menu must refuse it too."""

from __future__ import annotations

import pytest
from django.urls import reverse

from returnsync.choices import InboundStatus, JobStatus
from returnsync.roles import NAVIGATION, Role
from tests.factories import (
    BundleMappingFactory,
    ConnectionFactory,
    InboundEventFactory,
    MarketplaceReturnFactory,
    PortalReturnFactory,
    UserFactory,
    WarehouseMappingFactory,
    WriteBackFactory,
)

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


# --- Pages with an object and every action (POST), per role ---------------------------------

_ADMIN = frozenset({Role.ADMIN})
_OPS = frozenset({Role.OPERATIONS, Role.ADMIN})
_BUNDLE_READERS = next(item.roles for item in NAVIGATION if item.url_name == "bundle_list")
_RETURN_READERS = next(item.roles for item in NAVIGATION if item.url_name == "return_list")


def _bundle():
    return [BundleMappingFactory().pk]


def _warehouse():
    return [WarehouseMappingFactory().pk]


def _return():  # TikTok waits for its receipt decision: no request to answer, no call made
    return [MarketplaceReturnFactory().pk]


def _unreachable_return():  # TikTok cannot be reached (port 9): the reasons fragment says so
    return [MarketplaceReturnFactory(order__connection__base_url="http://127.0.0.1:9/sandbox/tiktok").pk]


def _orphan():
    return [PortalReturnFactory(marketplace_return=None, order=None, return_ref="", order_ref="579999999999",
                                tracking_number="1ZORPHAN").pk]


_CX = frozenset({Role.CX, Role.ADMIN})
_FINANCE = next(item.roles for item in NAVIGATION if item.url_name == "finance")


def _loop_connection():  # no live test registered: the action answers at once
    return [ConnectionFactory(kind="loop").pk]


# (url name, method, make args, POST data, roles allowed, status for an allowed role)
ACTIONS = [
    ("return_lookup", "get", list, {}, _RETURN_READERS, 302),
    ("return_decide", "post", _return, {"kind": "approve"}, _CX, 302),
    ("return_reject_reasons", "get", _unreachable_return, {}, _CX, 200),
    ("finance_returns", "get", list, {"bucket": "matched"}, _FINANCE, 200),
    ("portal_return_detail", "get", _orphan, {}, _RETURN_READERS, 200),
    ("portal_return_link", "post", _orphan, {"marketplace_return": ""}, _OPS, 302),
    ("bundle_export", "get", list, {}, _BUNDLE_READERS, 200),
    ("bundle_create", "get", list, {}, _OPS, 200),
    ("bundle_create", "post", list, {"bundle_sku": "K", "components": "A, 1, 1"}, _OPS, 302),
    ("bundle_edit", "get", _bundle, {}, _OPS, 200),
    ("bundle_edit", "post", _bundle, {"bundle_sku": "x", "components": "A, 1, 1"}, _OPS, 400),
    ("bundle_delete", "post", _bundle, {}, _OPS, 302),
    ("bundle_import", "get", list, {}, _OPS, 200),
    ("bundle_import", "post", list, {}, _OPS, 400),
    ("warehouse_create", "get", list, {}, _OPS, 200),
    ("warehouse_edit", "get", _warehouse, {}, _OPS, 200),
    ("warehouse_edit", "post", _warehouse, {"location_code": ""}, _OPS, 400),
    ("warehouse_create", "post", list, {"location_code": "X"}, _OPS, 400),
    ("warehouse_delete", "post", _warehouse, {}, _OPS, 302),
    ("connection_detail", "get", _loop_connection, {}, _ADMIN, 200),
    ("connection_test", "post", _loop_connection, {}, _ADMIN, 302),
    ("connection_toggle", "post", _loop_connection, {"field": "enabled", "value": "off"}, _ADMIN, 302),
    ("connection_secrets", "post", _loop_connection, {"webhook_secret": "x"}, _ADMIN, 302),
    ("inbound_retry", "post", lambda: [InboundEventFactory(status=InboundStatus.FAILED).pk], {}, _ADMIN, 302),
    ("writeback_retry", "post", lambda: [WriteBackFactory(status=JobStatus.DEAD).pk], {}, _ADMIN, 302),
]


@pytest.mark.parametrize(
    ("url_name", "method", "make", "data", "role", "expected"),
    [
        pytest.param(
            name, method, make, data, role, ok if role in allowed else 403,
            id=f"{method}-{name}-{role.value if role else 'anonymous'}",
        )
        for name, method, make, data, allowed, ok in ACTIONS
        for role in [None, *Role]
    ],
)
def test_every_action_checks_the_role(client_for_role, url_name, method, make, data, role, expected):
    url = reverse(url_name, args=make())
    response = getattr(client_for_role(role), method)(url, data)
    if role is None:
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    else:
        assert response.status_code == expected


@pytest.mark.parametrize("url_name", ["bundle_delete", "connection_toggle", "inbound_retry"])
def test_posts_without_a_csrf_token_are_refused(user_for_role, url_name):
    from django.test import Client

    args = {
        "bundle_delete": _bundle,
        "connection_toggle": _loop_connection,
        "inbound_retry": lambda: [InboundEventFactory(status=InboundStatus.FAILED).pk],
    }[url_name]()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for_role(Role.ADMIN))
    assert client.post(reverse(url_name, args=args), HTTP_HX_REQUEST="true").status_code == 403
