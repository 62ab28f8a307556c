"""The Django admin: every model is browsable, secrets stay write-only, bundles stay whole."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django import forms
from django.apps import apps
from django.contrib import admin
from django.db import connection as db
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils.html import escape

from returnsync.choices import System, TimelineKind
from returnsync.models import BundleComponent, BundleMapping, Connection, ReturnEvent
from tests import factories
from tests.factories import (
    BundleComponentFactory,
    BundleMappingFactory,
    ConnectionFactory,
    InboundEventFactory,
    MarketplaceReturnFactory,
    ReturnEventFactory,
    UserFactory,
)

pytestmark = pytest.mark.django_db

MODELS = sorted(
    (model for model in admin.site._registry if model._meta.app_label == "returnsync"),
    key=lambda model: model.__name__,
)
SECRETS = {"app_key": "key-7f3a9c", "app_secret": "app-secret-b81d44"}
WEBHOOK_SECRET = "whsec-5e0c2f"


def admin_url(model, view: str, *args) -> str:
    return reverse(f"admin:{model._meta.app_label}_{model._meta.model_name}_{view}", args=args)


def factory_for(model):
    return getattr(factories, f"{model.__name__}Factory")


@pytest.fixture
def superuser_client() -> Client:
    client = Client()
    client.force_login(UserFactory(username="root", is_staff=True, is_superuser=True))
    return client


def form_data(form: forms.BaseForm) -> dict[str, str]:
    """What a browser would post back for ``form`` left as it was rendered."""
    data = {}
    for name, field in form.fields.items():
        value = form[name].value()
        if isinstance(field.widget, forms.CheckboxInput):
            if value:
                data[name] = "on"
        elif value is not None:
            data[name] = value
    return data


# --- every model ----------------------------------------------------------------------


def test_every_core_model_is_registered():
    from simple_history.models import HistoricalChanges

    # Change history tables are read on each object's own page (history/_history.html).
    models = {m for m in apps.get_app_config("returnsync").get_models() if not issubclass(m, HistoricalChanges)}
    assert models - set(MODELS) == set()


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_changelist_search_add_and_change_pages_render(superuser_client, model):
    obj = factory_for(model)()

    changelist = superuser_client.get(admin_url(model, "changelist"))
    assert changelist.status_code == 200
    assert changelist.context["cl"].result_count == 1
    assert superuser_client.get(admin_url(model, "changelist"), {"q": "no-such-thing"}).status_code == 200
    assert superuser_client.get(admin_url(model, "add")).status_code == 200
    assert superuser_client.get(admin_url(model, "change", obj.pk)).status_code == 200


@pytest.mark.parametrize("model", MODELS, ids=lambda model: model.__name__)
def test_changelist_queries_do_not_grow_with_rows(superuser_client, model):
    url = admin_url(model, "changelist")
    factory_for(model)()
    superuser_client.get(url)  # warm caches (content types, session)
    with CaptureQueriesContext(db) as one_row:
        superuser_client.get(url)

    factory_for(model).create_batch(4)
    with CaptureQueriesContext(db) as five_rows:
        response = superuser_client.get(url)

    assert response.context["cl"].result_count == 5
    assert len(five_rows) == len(one_row), [q["sql"] for q in five_rows.captured_queries]


# --- connections: write-only secrets ------------------------------------------------


@pytest.fixture
def shop() -> Connection:
    return ConnectionFactory(name="Main shop", credentials=SECRETS, webhook_secret=WEBHOOK_SECRET)


def assert_no_secret_in(html: str) -> None:
    for secret in [*SECRETS.values(), WEBHOOK_SECRET]:
        assert secret not in html


def test_change_page_and_changelist_never_show_stored_secrets(superuser_client, shop):
    change = superuser_client.get(admin_url(Connection, "change", shop.pk)).content.decode()
    changelist = superuser_client.get(admin_url(Connection, "changelist")).content.decode()

    assert_no_secret_in(change)
    assert_no_secret_in(changelist)
    assert "Set: app_key, app_secret" in change  # which keys are set, not what they hold
    assert "Main shop" in changelist


def post_change(client: Client, connection: Connection, **changes) -> object:
    url = admin_url(Connection, "change", connection.pk)
    data = form_data(client.get(url).context["adminform"].form)
    data.update(changes)
    return client.post(url, data)


def test_blank_secret_inputs_keep_the_stored_secrets(superuser_client, shop):
    response = post_change(superuser_client, shop, name="Main shop EU", new_credentials="", new_webhook_secret="")

    assert response.status_code == 302
    stored = Connection.objects.get(pk=shop.pk)
    assert stored.name == "Main shop EU"
    assert stored.credentials == SECRETS
    assert stored.webhook_secret == WEBHOOK_SECRET


def test_new_webhook_secret_replaces_the_stored_one(superuser_client, shop):
    response = post_change(superuser_client, shop, new_webhook_secret="whsec-rotated")

    assert response.status_code == 302
    stored = Connection.objects.get(pk=shop.pk)
    assert stored.webhook_secret == "whsec-rotated"
    assert stored.credentials == SECRETS


def test_new_credentials_are_merged_into_the_stored_ones(superuser_client, shop):
    response = post_change(
        superuser_client, shop, new_credentials='{"app_secret": "app-secret-new", "access_token": "tok-1"}'
    )

    assert response.status_code == 302
    assert Connection.objects.get(pk=shop.pk).credentials == {
        "app_key": SECRETS["app_key"], "app_secret": "app-secret-new", "access_token": "tok-1",
    }


@pytest.mark.parametrize(
    ("typed", "error"),
    [('{"app_key": "typed-9z', "Credentials are not valid JSON"), ('["typed-9z"]', "must be a JSON object")],
    ids=["invalid json", "not an object"],
)
def test_credentials_that_are_not_a_json_object_are_refused(superuser_client, shop, typed, error):
    response = post_change(superuser_client, shop, new_credentials=typed, new_webhook_secret="whsec-typed")

    assert response.status_code == 200
    html = response.content.decode()
    assert error in html
    assert "whsec-typed" not in html and "typed-9z" not in html  # what was typed is not echoed back
    stored = Connection.objects.get(pk=shop.pk)
    assert (stored.credentials, stored.webhook_secret) == (SECRETS, WEBHOOK_SECRET)


def test_connection_added_with_secrets_stores_them(superuser_client):
    add_url = admin_url(Connection, "add")
    data = form_data(superuser_client.get(add_url).context["adminform"].form)
    data.update(
        name="New shop", kind=System.TIKTOK_SHOP, base_url="https://open-api.tiktokglobalshop.com",
        new_credentials='{"app_key": "k-new"}', new_webhook_secret="whsec-new",
    )

    response = superuser_client.post(add_url, data)

    assert response.status_code == 302
    stored = Connection.objects.get(name="New shop")
    assert (stored.credentials, stored.webhook_secret) == ({"app_key": "k-new"}, "whsec-new")


# --- bundles: shares sum to 1 ----------------------------------------------------------


def bundle_post(shares: list[str], **fields) -> dict[str, str]:
    data = {
        "bundle_sku": "KIT-9", "name": "Gift kit", "is_active": "on",
        "components-TOTAL_FORMS": str(len(shares)), "components-INITIAL_FORMS": "0",
        "components-MIN_NUM_FORMS": "1", "components-MAX_NUM_FORMS": "1000",
    }
    for i, share in enumerate(shares):
        data |= {f"components-{i}-component_sku": f"PART-{i}", f"components-{i}-quantity": "1",
                 f"components-{i}-price_share": share}
    return data | fields


def test_bundle_whose_shares_do_not_sum_to_one_is_refused_and_nothing_stored(superuser_client):
    response = superuser_client.post(admin_url(BundleMapping, "add"), bundle_post(["0.5", "0.4"]))

    assert response.status_code == 200
    assert "Price shares must sum to 1 (they sum to 0.9)." in response.content.decode()
    assert not BundleMapping.objects.exists()
    assert not BundleComponent.objects.exists()


def test_bundle_whose_shares_sum_to_one_is_saved(superuser_client):
    response = superuser_client.post(admin_url(BundleMapping, "add"), bundle_post(["0.5", "0.3", "0.2"]))

    assert response.status_code == 302
    bundle = BundleMapping.objects.get(bundle_sku="KIT-9")
    assert sorted(bundle.components.values_list("price_share", flat=True)) == [
        Decimal("0.2"), Decimal("0.3"), Decimal("0.5"),
    ]


def test_a_bundle_added_in_django_admin_is_one_version_with_its_components(superuser_client):
    superuser_client.post(admin_url(BundleMapping, "add"), bundle_post(["0.5", "0.3", "0.2"]))
    [version] = BundleMapping.objects.get(bundle_sku="KIT-9").history.all()
    assert len(version.components) == 3 and version.history_user.get_username() == "root"


def test_bundle_without_components_is_refused(superuser_client):
    data = bundle_post(["0.5"]) | {"components-0-component_sku": "", "components-0-quantity": "",
                                   "components-0-price_share": ""}

    response = superuser_client.post(admin_url(BundleMapping, "add"), data)

    assert response.status_code == 200
    assert not BundleMapping.objects.exists()


def test_component_edited_on_its_own_cannot_break_the_bundle_shares(superuser_client):
    bundle = BundleMappingFactory()
    half = BundleComponentFactory(bundle=bundle, component_sku="A", price_share=Decimal("0.5"))
    BundleComponentFactory(bundle=bundle, component_sku="B", price_share=Decimal("0.5"))

    response = superuser_client.post(
        admin_url(BundleComponent, "change", half.pk),
        {"component_sku": "A", "quantity": "1", "price_share": "0.6"},
    )

    assert response.status_code == 200
    assert "they sum to 1.1" in response.content.decode()
    half.refresh_from_db()
    assert half.price_share == Decimal("0.5")


def test_bundle_can_be_deleted_with_its_components(superuser_client):
    bundle = BundleComponentFactory(price_share=Decimal(1)).bundle

    response = superuser_client.post(admin_url(BundleMapping, "delete", bundle.pk), {"post": "yes"})

    assert response.status_code == 302
    assert not BundleMapping.objects.exists()
    assert not BundleComponent.objects.exists()


# --- inbound events and the timeline ------------------------------------------------


def test_inbound_event_shows_body_and_headers_as_text_without_inputs(superuser_client):
    body = b'{"type": 12, "data": {"return_id": "403500000000777"}}'
    event = InboundEventFactory(body=body, headers={"X-Tts-Event": "return"})

    html = superuser_client.get(admin_url(type(event), "change", event.pk)).content.decode()

    assert escape(body.decode()) in html  # exactly as it arrived
    assert escape('"return_id": "403500000000777"') in html  # and pretty-printed
    assert "X-Tts-Event" in html
    for field in ("body", "headers", "dedupe_key", "source"):
        assert f'name="{field}"' not in html


def test_timeline_event_added_in_admin_is_recorded_through_the_timeline(superuser_client):
    mreturn = MarketplaceReturnFactory(order_ref="577000000000555", return_id="403500000000555")
    data = {
        "marketplace_return": str(mreturn.pk), "system": System.TIKTOK_SHOP, "kind": TimelineKind.NOTE,
        "summary": "Buyer called about the label", "data": "{}", "occurred_at_0": "2025-03-01",
        "occurred_at_1": "10:00:00", "dedupe_key": "",
    }

    response = superuser_client.post(admin_url(ReturnEvent, "add"), data)

    assert response.status_code == 302
    event = ReturnEvent.objects.get()
    assert (event.order_ref, event.return_ref) == ("577000000000555", "403500000000555")
    assert event.actor.username == "root"


def test_timeline_events_cannot_be_edited(superuser_client):
    event = ReturnEventFactory(summary="Status changed")

    response = superuser_client.post(admin_url(ReturnEvent, "change", event.pk), {"summary": "Rewritten"})

    assert response.status_code == 403
    event.refresh_from_db()
    assert event.summary == "Status changed"
