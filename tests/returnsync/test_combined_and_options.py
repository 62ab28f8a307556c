"""Combined returns shown together, and a connection's options and first poll on its
page, against the TikTok sandbox over real HTTP (issue 12, items 8 and 9)."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from connectors.polling import poll_run
from connectors.tiktok_shop.client import TikTokClient
from connectors.tiktok_shop.sandbox import api as sandbox
from connectors.tiktok_shop.sandbox.models import SandboxReturn
from connectors.tiktok_shop.sync import return_refetch
from returnsync.models import MarketplaceReturn
from returnsync.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def shop(live_server):
    conn = sandbox.connect(name="combined-test", server_url=live_server.url)
    return conn, TikTokClient(conn, sleep=lambda s: None)


@pytest.fixture
def admin():
    client = Client()
    client.force_login(UserFactory(username="adm", roles=[Role.ADMIN]))
    return client


def _returned(conn, sku: str) -> str:
    order = sandbox.create_order(conn, lines=[{"sku_id": sku, "seller_sku": f"SKU-{sku}", "sale_price": "20.00"}],
                                 notify=False)
    return sandbox.create_return(conn, order_id=order["id"], status="AWAITING_BUYER_SHIP", notify=False)["return_id"]


def _combine(return_ids, combined_id: str) -> None:
    for row in SandboxReturn.objects.filter(return_id__in=return_ids):
        # As TikTok sends it: a loose boolean string and the shared id.
        row.data = {**row.data, "is_combined_return": "true ", "combined_return_id": combined_id}
        row.save(update_fields=["data"])


def test_combined_returns_are_captured_and_shown_together(shop, admin):
    conn, client = shop
    first, second, alone = _returned(conn, "101"), _returned(conn, "102"), _returned(conn, "103")
    _combine([first, second], "CMB-777")
    for return_id in (first, second, alone):
        return_refetch(connection=conn, return_id=return_id, client=client)
    stored = {r.return_id: r for r in MarketplaceReturn.objects.filter(connection=conn)}
    assert stored[first].is_combined_return and stored[first].combined_return_id == "CMB-777"
    assert not stored[alone].is_combined_return and stored[alone].combined_return_id == ""

    page = admin.get(reverse("return_detail", args=[stored[first].pk])).content.decode()
    assert 'data-section="combined"' in page and "CMB-777" in page
    assert f'data-return="{first}"' in page and f'data-return="{second}"' in page
    assert f'data-return="{alone}"' not in page
    assert 'data-section="combined"' not in admin.get(
        reverse("return_detail", args=[stored[alone].pk])).content.decode()
    listed = admin.get(reverse("return_list"), {"q": "CMB-777"}).context["table"].page.object_list
    assert sorted(r.record.return_id for r in listed) == sorted([first, second])


def test_connection_page_documents_every_option_and_the_first_poll_says_how_far_back(shop, admin):
    conn, client = shop
    conn.options = {**(conn.options or {}), "initial_lookback_days": 7, "auth_base_url": conn.base_url}
    conn.save()
    _returned(conn, "201")  # something to read, so the watermark moves
    run = poll_run(connection=conn, client=client, now=timezone.now() + timedelta(minutes=5))  # the sandbox stamps steps ahead
    assert run.counts["created"] == 1, run.counts
    assert run.counts["note"].startswith("First poll: read back 7 days, since ")
    assert "option initial_lookback_days=7" in run.counts["note"]
    assert "note" not in poll_run(connection=conn, client=client).counts  # later polls follow the watermark

    page = admin.get(reverse("connection_detail", args=[conn.pk])).content.decode()
    for option in ("auth_base_url", "initial_lookback_days", "shop_cipher", "retry_codes", "webhook_max_age_hours"):
        assert f'data-option="{option}"' in page
    assert "https://auth.tiktok-shops.com" in page  # the default, shown beside the value set
    assert "How far back the first poll reads returns." in page
    assert 'data-credential="app_secret"' in page and "Signs every call and every webhook." in page
    assert "First poll: read back 7 days" in page


def test_a_first_poll_without_the_option_names_the_connector_default(shop):
    conn, client = shop
    run = poll_run(connection=conn, client=client)
    assert run.counts["note"].startswith("First poll: read back 30 days") and "TikTok Shop default" in run.counts["note"]
