"""What a person notices on the dashboard pages: search, filters, htmx partials, CSV,
the return detail, secrets kept off the page, the home figures, login and logout."""

from __future__ import annotations

import csv
import io
from datetime import timedelta
from decimal import Decimal

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone

from returnsync.choices import InboundStatus, JobStatus, RefundStatus, Stage, System, TimelineKind
from returnsync.roles import Role
from returnsync.selectors import start_of_today
from tests.factories import (
    DEMO_PASSWORD,
    ApiCallFactory,
    BundleComponentFactory,
    ConnectionFactory,
    InboundEventFactory,
    InventoryAdjustmentFactory,
    MarketplaceReturnFactory,
    MarketplaceReturnLineFactory,
    OrderFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    PortalReturnLineFactory,
    RefundFactory,
    ReturnEventFactory,
    UserFactory,
    WriteBackFactory,
)

pytestmark = pytest.mark.django_db

HTMX = {"HTTP_HX_REQUEST": "true"}


def records(response) -> list:
    return [row.record for row in response.context["table"].paginated_rows]


def csv_rows(response) -> list[list[str]]:
    assert response["Content-Type"].startswith("text/csv")
    body = b"".join(response.streaming_content).decode()
    return list(csv.reader(io.StringIO(body)))


@pytest.fixture
def cx(client_for_role):
    return client_for_role(Role.CX)


@pytest.fixture
def admin(client_for_role):
    return client_for_role(Role.ADMIN)


# --- Returns: search and filters -----------------------------------------------------------


@pytest.fixture
def wanted_and_others():
    wanted = MarketplaceReturnFactory(order=OrderFactory(buyer_postal_code="10001"))
    PortalReturnFactory(
        marketplace_return=wanted, tracking_number="ZZTRACK123", external_id="ZZ-777"
    )
    others = [
        MarketplaceReturnFactory(order=OrderFactory(buyer_postal_code="94105")) for _ in range(3)
    ]
    PortalReturnFactory(marketplace_return=others[0])
    return wanted, others


@pytest.mark.parametrize(
    "query",
    [
        pytest.param(lambda r: r.order_ref, id="order-id"),
        pytest.param(lambda r: r.return_id, id="return-id"),
        pytest.param(lambda r: r.tracking_number, id="tiktok-tracking"),
        pytest.param(lambda r: r.tracking_number.lower(), id="tiktok-tracking-any-case"),
        pytest.param(lambda r: "ZZTRACK123", id="portal-tracking"),
        pytest.param(lambda r: "ZZ-777", id="portal-return-id"),
        pytest.param(lambda r: "10001", id="buyer-zip"),
        pytest.param(lambda r: f"  {r.order_ref} ", id="pasted-with-spaces"),
    ],
)
def test_search_finds_the_return_and_only_it(cx, wanted_and_others, query):
    wanted, _ = wanted_and_others
    response = cx.get(reverse("return_list"), {"q": query(wanted)})
    assert response.status_code == 200
    assert records(response) == [wanted]
    assert wanted.return_id in response.content.decode()


def test_search_with_no_match_shows_the_filtered_empty_state(cx, wanted_and_others):
    response = cx.get(reverse("return_list"), {"q": "no-such-id"})
    assert records(response) == []
    assert "No returns match." in response.content.decode()


def test_empty_list_says_so(cx):
    content = cx.get(reverse("return_list")).content.decode()
    assert "No TikTok returns yet" in content


def test_stage_filter_takes_several_stages(cx):
    approved = MarketplaceReturnFactory(stage=Stage.APPROVED)
    received = MarketplaceReturnFactory(stage=Stage.RECEIVED)
    MarketplaceReturnFactory(stage=Stage.REFUNDED)
    response = cx.get(reverse("return_list"), {"stage": [Stage.APPROVED, Stage.RECEIVED]})
    assert set(records(response)) == {approved, received}


def test_connection_filter(cx):
    mine = MarketplaceReturnFactory()
    MarketplaceReturnFactory()
    response = cx.get(reverse("return_list"), {"connection_id": mine.connection_id})
    assert records(response) == [mine]


def test_invalid_filter_values_are_ignored_not_an_error(cx):
    MarketplaceReturnFactory()
    response = cx.get(
        reverse("return_list"), {"stage": "bogus", "connection_id": "x", "page": "nope"}
    )
    assert response.status_code == 200


def test_return_list_shows_zip_and_portal_status(cx):
    ret = MarketplaceReturnFactory(
        order=OrderFactory(buyer_postal_code="73301"), stage=Stage.IN_TRANSIT
    )
    PortalReturnFactory(marketplace_return=ret, stage=Stage.RECEIVED, raw_status="RECEIVED")
    content = cx.get(reverse("return_list")).content.decode()
    assert "73301" in content
    assert 'data-value="received"' in content  # the portal's stage badge
    assert 'data-value="in_transit"' in content  # TikTok's stage badge
    assert f'href="{ret.get_absolute_url()}"' in content


def test_sorting_by_a_column(cx):
    for order_id in ("300", "100", "200"):
        MarketplaceReturnFactory(order=OrderFactory(order_id=order_id), order_ref=order_id)
    response = cx.get(reverse("return_list"), {"sort": "order_ref"})
    assert [r.order_ref for r in records(response)] == ["100", "200", "300"]
    response = cx.get(reverse("return_list"), {"sort": "-order_ref"})
    assert [r.order_ref for r in records(response)] == ["300", "200", "100"]


def test_page_size_defaults_to_50_and_is_capped_at_200(cx):
    MarketplaceReturnFactory()
    assert cx.get(reverse("return_list")).context["table"].paginator.per_page == 50
    assert (
        cx.get(reverse("return_list"), {"per_page": 10}).context["table"].paginator.per_page == 10
    )
    assert (
        cx.get(reverse("return_list"), {"per_page": 100000}).context["table"].paginator.per_page
        == 200
    )


def test_pagination_keeps_the_filters(cx):
    for _ in range(3):
        MarketplaceReturnFactory(stage=Stage.APPROVED)
    MarketplaceReturnFactory(stage=Stage.CLOSED)
    response = cx.get(reverse("return_list"), {"stage": Stage.APPROVED, "per_page": 2})
    content = response.content.decode()
    assert response.context["table"].paginator.count == 3
    assert "stage=approved&amp;per_page=2&amp;page=2" in content


# --- htmx ------------------------------------------------------------------------------------


def test_full_page_wraps_the_partial(cx):
    MarketplaceReturnFactory()
    response = cx.get(reverse("return_list"))
    content = response.content.decode()
    assert "<html" in content
    assert 'id="list-partial"' in content
    assert 'id="filter-form"' in content
    assert 'hx-push-url="true"' in content


def test_htmx_request_gets_only_the_partial(cx):
    ret = MarketplaceReturnFactory()
    response = cx.get(reverse("return_list"), {"q": ret.order_ref}, **HTMX)
    content = response.content.decode()
    assert response.status_code == 200
    assert "<html" not in content
    assert "filter-form" in content  # the sort/page-size fields belong to the filter form
    assert 'id="filter-form"' not in content
    assert content.lstrip().startswith('<section id="list-partial"')
    assert ret.return_id in content
    assert "HX-Request" in response["Vary"]


def test_htmx_history_restore_gets_the_whole_page(cx):
    response = cx.get(reverse("return_list"), HTTP_HX_HISTORY_RESTORE_REQUEST="true", **HTMX)
    assert "<html" in response.content.decode()


@pytest.mark.parametrize(
    "url_name",
    [
        "refund_list",
        "bundle_list",
        "inventory_list",
        "writeback_list",
        "connection_list",
        "inbound_list",
        "apicall_list",
    ],
)
def test_every_list_answers_htmx_with_its_partial(admin, url_name):
    full = admin.get(reverse(url_name))
    partial = admin.get(reverse(url_name), **HTMX)
    assert "<html" in full.content.decode()
    assert "<html" not in partial.content.decode()
    assert 'id="list-partial"' in partial.content.decode()


def test_htmx_request_from_an_expired_session_is_sent_to_login():
    response = Client().get(reverse("return_list"), {"q": "x"}, **HTMX)
    assert response.status_code == 302
    assert response.url.startswith(reverse("login"))


def test_role_mixin_alone_sends_htmx_to_login_with_a_client_redirect(settings):
    """Without the deny-by-default middleware the views still refuse anonymous users, and
    tell htmx to load the login page as a page (never swap it into a table)."""
    settings.MIDDLEWARE = [
        m for m in settings.MIDDLEWARE if not m.endswith("LoginRequiredMiddleware")
    ]
    assert Client().get(reverse("return_list")).url.startswith(reverse("login"))
    response = Client().get(reverse("return_list"), **HTMX)
    assert response["HX-Redirect"].startswith(reverse("login"))


# --- CSV export --------------------------------------------------------------------------------


def test_csv_export_has_the_visible_columns_and_the_filtered_rows(cx):
    kept = [MarketplaceReturnFactory(stage=Stage.RECEIVED) for _ in range(2)]
    MarketplaceReturnFactory(stage=Stage.CLOSED)
    PortalReturnFactory(marketplace_return=kept[0], raw_status="RECEIVED")
    response = cx.get(
        reverse("return_list"), {"stage": Stage.RECEIVED, "export": "csv", "per_page": 1}
    )
    assert response.status_code == 200
    assert "attachment" in response["Content-Disposition"]
    rows = csv_rows(response)
    assert rows[0] == [
        "Return id",
        "Order id",
        "Buyer zip",
        "Stage",
        "TikTok status",
        "Tracking",
        "Portal status",
        "Deadline",
        "Created",
    ]
    assert sorted(row[0] for row in rows[1:]) == sorted(
        r.return_id for r in kept
    )  # all pages, filtered
    assert {row[3] for row in rows[1:]} == {"Received"}  # plain labels, no badge HTML
    assert "ZigZag: RECEIVED" in [row[6] for row in rows[1:]]
    assert "<" not in "".join("".join(row) for row in rows)


def test_csv_export_of_refunds_splits_amount_and_currency(client_for_role):
    RefundFactory(amount=Decimal("12.50"), currency="GBP")
    rows = csv_rows(client_for_role(Role.FINANCE).get(reverse("refund_list"), {"export": "csv"}))
    header, row = rows[0], rows[1]
    assert row[header.index("Amount")] == "12.50"
    assert row[header.index("Currency")] == "GBP"


def test_csv_cells_cannot_smuggle_spreadsheet_formulas(client_for_role):
    InventoryAdjustmentFactory(last_error='=HYPERLINK("http://evil")', delta=-2)
    rows = csv_rows(
        client_for_role(Role.OPERATIONS).get(reverse("inventory_list"), {"export": "csv"})
    )
    header, row = rows[0], rows[1]
    assert row[header.index("Last error")].startswith("'=")
    assert row[header.index("Delta")] == "-2"  # numbers are left alone


# --- Other lists -------------------------------------------------------------------------------


def test_refund_list_filters_by_status_and_finds_by_return_id(client_for_role):
    client = client_for_role(Role.FINANCE)
    done = RefundFactory(status=RefundStatus.SUCCEEDED)
    failed = RefundFactory(status=RefundStatus.FAILED)
    assert records(client.get(reverse("refund_list"), {"status": RefundStatus.FAILED})) == [failed]
    assert records(
        client.get(reverse("refund_list"), {"q": done.marketplace_return.return_id})
    ) == [done]
    content = client.get(reverse("refund_list")).content.decode()
    assert "TikTok Shop" in content  # source system from the connection


def test_bundle_list_shows_components(client_for_role):
    component = BundleComponentFactory(component_sku="MUG-BLUE", quantity=2, price_share=Decimal(1))
    content = client_for_role(Role.OPERATIONS).get(reverse("bundle_list")).content.decode()
    assert component.bundle.bundle_sku in content
    assert "MUG-BLUE" in content and "× 2 @ 100%" in content


def test_restock_and_write_back_status_filters(client_for_role):
    client = client_for_role(Role.OPERATIONS)
    dead = InventoryAdjustmentFactory(status=JobStatus.DEAD)
    InventoryAdjustmentFactory(status=JobStatus.SUCCEEDED)
    assert records(client.get(reverse("inventory_list"), {"status": JobStatus.DEAD})) == [dead]
    retrying = WriteBackFactory(status=JobStatus.RETRYING, attempts=3)
    WriteBackFactory(status=JobStatus.SUCCEEDED)
    response = client.get(reverse("writeback_list"), {"status": JobStatus.RETRYING})
    assert records(response) == [retrying]
    assert "3 / 8" in response.content.decode()


def test_inbound_list_filters(admin):
    dead = InboundEventFactory(
        status=InboundStatus.FAILED, subject_ref="403500000000999", error="boom"
    )
    InboundEventFactory(status=InboundStatus.PROCESSED, source=System.ZIGZAG)
    assert records(admin.get(reverse("inbound_list"), {"status": InboundStatus.FAILED})) == [dead]
    assert records(admin.get(reverse("inbound_list"), {"q": "0999"})) == [dead]
    assert len(records(admin.get(reverse("inbound_list"), {"source": System.ZIGZAG}))) == 1


def test_api_call_outcome_filter(admin):
    ok = ApiCallFactory(http_status=200, api_code="0")
    refused = ApiCallFactory(http_status=200, api_code="36009003")
    no_answer = ApiCallFactory(http_status=None, api_code="")
    assert records(admin.get(reverse("apicall_list"), {"outcome": "ok"})) == [ok]
    assert set(records(admin.get(reverse("apicall_list"), {"outcome": "failed"}))) == {
        refused,
        no_answer,
    }
    assert records(admin.get(reverse("apicall_list"), {"connection_id": ok.connection_id})) == [ok]


# --- Return detail -----------------------------------------------------------------------------


def test_return_detail_shows_both_systems_and_one_timeline_in_order(cx):
    now = timezone.now()
    ret = MarketplaceReturnFactory(raw_status="BUYER_SHIPPED_ITEM", stage=Stage.IN_TRANSIT)
    MarketplaceReturnLineFactory(marketplace_return=ret, seller_sku="TEE-RED-M")
    portal = PortalReturnFactory(
        marketplace_return=ret,
        raw_status="RECEIVED_AT_DC",
        stage=Stage.RECEIVED,
        authorized_refund=Decimal("19.99"),
    )
    PortalReturnLineFactory(
        portal_return=portal, sku="TEE-RED-M", expected_quantity=2, received_quantity=1
    )
    RefundFactory(marketplace_return=ret, amount=Decimal("19.99"))
    # Recorded out of order, in both systems, one before the two were linked.
    ReturnEventFactory(
        marketplace_return=ret, summary="Third: buyer shipped", occurred_at=now - timedelta(hours=1)
    )
    ReturnEventFactory(
        marketplace_return=None,
        portal_return=portal,
        order_ref=ret.order_ref,
        return_ref=ret.return_id,
        system=System.ZIGZAG,
        kind=TimelineKind.RECEIVED,
        summary="Fourth: scanned at warehouse",
        occurred_at=now,
    )
    ReturnEventFactory(
        marketplace_return=None,
        portal_return=portal,
        order_ref=ret.order_ref,
        return_ref="",
        system=System.ZIGZAG,
        summary="Second: label created",
        occurred_at=now - timedelta(hours=5),
    )
    ReturnEventFactory(
        marketplace_return=ret, summary="First: requested", occurred_at=now - timedelta(days=1)
    )
    ReturnEventFactory(summary="Someone else's return", occurred_at=now - timedelta(hours=2))

    response = cx.get(reverse("return_detail", args=[ret.pk]))
    content = response.content.decode()
    assert response.status_code == 200
    assert "BUYER_SHIPPED_ITEM" in content and "RECEIVED_AT_DC" in content
    assert 'data-value="in_transit"' in content and 'data-value="received"' in content
    assert "TEE-RED-M" in content and "19.99" in content
    summaries = [
        "First: requested",
        "Second: label created",
        "Third: buyer shipped",
        "Fourth: scanned at warehouse",
    ]
    positions = [content.index(s) for s in summaries]
    assert positions == sorted(positions)
    assert "Someone else&#x27;s return" not in content and "Someone else's return" not in content


def test_timeline_includes_events_recorded_under_the_return_id_only(cx):
    ret = MarketplaceReturnFactory()
    ReturnEventFactory(
        marketplace_return=None,
        portal_return=None,
        order_ref=ret.order_ref,
        return_ref=ret.return_id,
        summary="Seen in a webhook before the return was stored",
    )
    assert (
        "Seen in a webhook before"
        in cx.get(reverse("return_detail", args=[ret.pk])).content.decode()
    )


def test_return_detail_without_portal_record_says_so(cx):
    ret = MarketplaceReturnFactory()
    content = cx.get(reverse("return_detail", args=[ret.pk])).content.decode()
    assert "No portal record is linked" in content
    assert "Nothing recorded on this return yet" in content


def test_unknown_return_is_404(cx):
    assert cx.get(reverse("return_detail", args=[999999])).status_code == 404


# --- Secrets -----------------------------------------------------------------------------------


def test_connection_list_never_shows_credentials_or_the_webhook_secret(admin):
    ConnectionFactory()
    PortalConnectionFactory()
    ConnectionFactory(credentials={})
    secrets = ["s3cr3t-app-secret", "whsec-demo-secret", "zz-password"]
    for response in (
        admin.get(reverse("connection_list")),
        admin.get(reverse("connection_list"), **HTMX),
        admin.get(reverse("home")),
    ):
        content = response.content.decode()
        assert not any(secret in content for secret in secrets)
    exported = "".join(
        ",".join(row) for row in csv_rows(admin.get(reverse("connection_list"), {"export": "csv"}))
    )
    assert not any(secret in exported for secret in secrets)


def test_connection_list_shows_whether_credentials_are_set_and_the_webhook_path(admin):
    connection = ConnectionFactory()
    portal = PortalConnectionFactory(credentials={})
    content = admin.get(reverse("connection_list")).content.decode()
    # The receiver's real route where one exists, the conventional path otherwise.
    assert f'value="{reverse("tiktok_webhook", args=[connection.webhook_slug])}"' in content
    assert f'value="/webhooks/zigzag/{portal.webhook_slug}/"' in content
    assert ">Set<" in content and ">Not set<" in content


def test_connection_absolute_url_filters_the_list_to_it(admin):
    connection = ConnectionFactory()
    ConnectionFactory()
    assert records(admin.get(connection.get_absolute_url())) == [connection]


# --- Home ----------------------------------------------------------------------------------------


@pytest.fixture
def home_data():
    now = timezone.now()
    for _ in range(3):
        MarketplaceReturnFactory(
            stage=Stage.APPROVED,
            source_created_at=now - timedelta(days=3),
            next_action_deadline=now + timedelta(days=2),
        )
    today = start_of_today()
    MarketplaceReturnFactory(
        stage=Stage.REQUESTED,
        source_created_at=today,
        next_action_deadline=now + timedelta(hours=2),
    )
    MarketplaceReturnFactory(
        stage=Stage.REQUESTED, source_created_at=now, next_action_deadline=now + timedelta(hours=11)
    )
    MarketplaceReturnFactory(
        stage=Stage.REQUESTED,
        source_created_at=today - timedelta(seconds=1),
        next_action_deadline=now + timedelta(hours=13),
    )
    # Not at risk: already closed, already lapsed.
    MarketplaceReturnFactory(
        stage=Stage.CLOSED,
        source_created_at=now - timedelta(days=9),
        next_action_deadline=now + timedelta(hours=1),
    )
    MarketplaceReturnFactory(
        stage=Stage.APPROVED,
        source_created_at=now - timedelta(days=9),
        next_action_deadline=now - timedelta(hours=1),
    )
    RefundFactory(amount=Decimal("10.00"), currency="USD", refunded_at=now - timedelta(hours=1))
    RefundFactory(amount=Decimal("5.50"), currency="USD", refunded_at=now - timedelta(hours=23))
    RefundFactory(amount=Decimal("7.00"), currency="GBP", refunded_at=now - timedelta(hours=2))
    RefundFactory(amount=Decimal("99.00"), currency="USD", refunded_at=now - timedelta(hours=30))
    RefundFactory(amount=Decimal("99.00"), currency="USD", status=RefundStatus.FAILED)
    for status, n in (
        (JobStatus.QUEUED, 2),
        (JobStatus.RETRYING, 1),
        (JobStatus.DEAD, 4),
        (JobStatus.SUCCEEDED, 3),
    ):
        for _ in range(n):
            WriteBackFactory(status=status)
    for status in (JobStatus.QUEUED, JobStatus.RETRYING, JobStatus.SUCCEEDED, JobStatus.DEAD):
        InventoryAdjustmentFactory(status=status)
    PortalConnectionFactory(
        name="Flaky portal",
        last_success_at=now - timedelta(hours=3),
        last_error_at=now - timedelta(minutes=10),
        last_error="HTTP 503 upstream",
    )


def test_home_counts_for_admin(admin, home_data):
    response = admin.get(reverse("home"))
    context = response.context
    content = response.content.decode()
    # Refunds and write-backs made their own returns (created two days ago): 8 + 5 + 10 in all.
    stages = {s.stage: s.count for s in context["stage_counts"]}
    assert stages[Stage.REQUESTED] == 3 and stages[Stage.CLOSED] == 1
    assert context["returns_total"] == 23
    assert context["intake_today"] == 2
    # Within 12 h and still open: not the closed one, not the lapsed one, not the one in 13 h.
    assert context["deadlines_count"] == 2
    totals = {t.currency: (t.total, t.count) for t in context["refund_totals"]}
    assert totals == {"USD": (Decimal("15.50"), 2), "GBP": (Decimal("7.00"), 1)}
    assert context["write_back_counts"] == {
        JobStatus.QUEUED: 2,
        JobStatus.RETRYING: 1,
        JobStatus.DEAD: 4,
    }
    assert context["restock_counts"] == {"pending": 2, "dead": 1}
    assert 'data-kpi="deadlines">2<' in content
    assert 'data-stat="writebacks-dead">4<' in content
    assert "Flaky portal" in content and "HTTP 503 upstream" in content
    assert 'data-stage="requested"' in content


@pytest.mark.parametrize(
    ("role", "shown", "hidden"),
    [
        (
            Role.CX,
            ["Deadlines lapsing within"],
            ["Refunds in the last", "Write-backs and restock", "Connections</h2>"],
        ),
        (
            Role.FINANCE,
            ["Refunds in the last"],
            ["Deadlines lapsing within", "Write-backs and restock"],
        ),
        (
            Role.OPERATIONS,
            ["Write-backs and restock"],
            ["Refunds in the last", "Deadlines lapsing within"],
        ),
        (
            Role.ADMIN,
            [
                "Deadlines lapsing within",
                "Refunds in the last",
                "Write-backs and restock",
                "Connections</h2>",
            ],
            [],
        ),
    ],
    ids=lambda v: v.value if isinstance(v, Role) else None,
)
def test_home_shows_the_sections_of_the_users_roles(client_for_role, role, shown, hidden):
    content = client_for_role(role).get(reverse("home")).content.decode()
    assert "Returns by stage" in content
    for title in shown:
        assert title in content
    for title in hidden:
        assert title not in content


def test_home_on_an_empty_database_shows_empty_states(admin):
    content = admin.get(reverse("home")).content.decode()
    assert "No TikTok returns yet" in content
    assert "No refunds succeeded" in content


# --- Layout, login and logout ----------------------------------------------------------------


def test_top_bar_shows_user_role_and_current_page(client_for_role):
    content = client_for_role(Role.FINANCE).get(reverse("refund_list")).content.decode()
    assert "finance-user" in content and "Finance" in content
    assert 'class="active" aria-current="page">Refunds</a>' in content
    assert "vendor/htmx-2.0.11.min.js" in content
    assert "cdn" not in content.lower()


def test_logout_form_posts_with_a_csrf_token_and_htmx_carries_it_too(cx):
    content = cx.get(reverse("home")).content.decode()
    form = content[content.index('<form method="post" action="/accounts/logout/"') :]
    form = form[: form.index("</form>")]
    assert 'name="csrfmiddlewaretoken"' in form
    assert 'hx-headers=\'{"X-CSRFToken": "' in content


def test_logout_with_the_token_logs_out():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="leaving", roles=[Role.CX]))
    page = client.get(reverse("home"))
    token = page.context["csrf_token"]
    response = client.post(reverse("logout"), {"csrfmiddlewaretoken": str(token)})
    assert response.status_code == 302 and response.url == reverse("login")
    assert client.get(reverse("home")).status_code == 302


def test_htmx_post_without_csrf_token_is_refused():
    client = Client(enforce_csrf_checks=True)
    client.force_login(UserFactory(username="forged", roles=[Role.CX]))
    response = client.post(reverse("logout"), **HTMX)
    assert response.status_code == 403
    assert b"refused" in response.content
    assert client.get(reverse("home")).status_code == 200  # still logged in


def test_login_page_and_a_failed_attempt():
    UserFactory(username="casey", roles=[Role.CX])
    client = Client()
    page = client.get(reverse("login")).content.decode()
    assert 'id="id_username"' in page and 'id="id_password"' in page and ">Log in</button>" in page
    failed = client.post(reverse("login"), {"username": "casey", "password": "wrong"})
    assert failed.status_code == 200
    assert "Please enter a correct username and password" in failed.content.decode()
    ok = client.post(reverse("login"), {"username": "casey", "password": DEMO_PASSWORD})
    assert ok.status_code == 302 and ok.url == reverse("home")


@pytest.mark.parametrize(
    ("url_name", "make"),
    [
        ("return_list", lambda: PortalReturnFactory()),
        ("refund_list", lambda: RefundFactory()),
        ("bundle_list", lambda: BundleComponentFactory()),
        (
            "inventory_list",
            lambda: InventoryAdjustmentFactory(last_error="warehouse <WH1> unknown"),
        ),
        ("writeback_list", lambda: WriteBackFactory(last_error="HTTP 429")),
        (
            "connection_list",
            lambda: ConnectionFactory(last_error_at=timezone.now(), last_error="timeout"),
        ),
        ("inbound_list", lambda: InboundEventFactory(error="bad json")),
        ("apicall_list", lambda: ApiCallFactory()),
    ],
)
def test_every_csv_export_is_plain_text_with_the_on_screen_headers(admin, url_name, make):
    make()
    page = admin.get(reverse(url_name))
    rows = csv_rows(admin.get(reverse(url_name), {"export": "csv"}))
    assert len(rows) == 2
    # A column without a header holds buttons (Retry), not data: it is not exported.
    on_screen = [str(column.header) for column in page.context["table"].columns if str(column.header)]
    assert set(on_screen) <= set(rows[0])
    text = "".join(rows[1])
    assert (
        "<span" not in text and "<code" not in text and "&amp;" not in text and "&lt;" not in text
    )
