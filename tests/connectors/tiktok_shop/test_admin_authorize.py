"""An admin pastes a seller's TikTok authorization code into the connection's admin page."""
from __future__ import annotations

import pytest
from django.contrib.messages import get_messages
from django.test import Client

from connectors.tiktok_shop.sandbox import api as sandbox
from returnsync.models import Connection
from tests.factories import UserFactory
from tests.returnsync.test_admin import post_change

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def admin_client() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


@pytest.fixture
def unauthorized_shop(live_server) -> Connection:
    """A sandbox connection with app credentials but no tokens or shop cipher yet."""
    connection = sandbox.connect(name="Fresh shop", server_url=live_server.url)
    connection.credentials = {k: v for k, v in connection.credentials.items() if k in ("app_key", "app_secret")}
    connection.options = {"auth_base_url": connection.options["auth_base_url"]}
    connection.save()
    return connection


def test_a_pasted_auth_code_is_exchanged_for_tokens_and_the_shop_is_found(admin_client, unauthorized_shop):
    code = sandbox.issue_auth_code(unauthorized_shop)

    response = post_change(admin_client, unauthorized_shop, auth_code=code)

    assert response.status_code == 302
    unauthorized_shop.refresh_from_db()
    assert unauthorized_shop.credentials["access_token"].startswith("TTP_")
    assert unauthorized_shop.credentials["refresh_token"]
    assert unauthorized_shop.options["shop_cipher"] == sandbox.get_shop(unauthorized_shop).cipher
    assert any("Authorized" in str(m) for m in get_messages(response.wsgi_request))


def test_a_refused_auth_code_is_a_message_not_an_error_page(admin_client, unauthorized_shop):
    response = post_change(admin_client, unauthorized_shop, auth_code="not-a-real-code")

    assert response.status_code == 302
    unauthorized_shop.refresh_from_db()
    assert "access_token" not in unauthorized_shop.credentials
    assert any("refused the authorization code" in str(m) for m in get_messages(response.wsgi_request))
