"""The exception pages as people use them: queues per role, search and filters, in-place
actions over htmx (with CSRF), the detail page, bulk actions, the runbook and settings."""
from __future__ import annotations

import csv
import io
from datetime import timedelta

import pytest
from django.test import Client
from django.urls import reverse
from django.utils import timezone
from django.utils.html import escape

from exceptions_app.choices import ExceptionStatus, ResolutionCode
from exceptions_app.models import ExceptionCase, ExceptionTypeSetting
from exceptions_app.rules import REGISTRY
from returnsync.choices import JobStatus
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory, partial_refund_case
from tests.factories import MarketplaceReturnFactory, PortalReturnFactory, WriteBackFactory

pytestmark = pytest.mark.django_db
HTMX = {"HTTP_HX_REQUEST": "true"}


def rows(response) -> set[int]:
    return {row.record.pk for row in response.context["table"].page.object_list}


def test_each_role_lands_on_its_own_queue_and_admin_sees_all(client_for_role):
    cx_case = ExceptionCaseFactory(owner_role=Role.CX)
    fin_case = ExceptionCaseFactory(owner_role=Role.FINANCE)
    ExceptionCaseFactory(owner_role=Role.CX, status=ExceptionStatus.RESOLVED)
    url = reverse("exception_list")
    assert rows(client_for_role(Role.CX).get(url)) == {cx_case.pk}
    assert rows(client_for_role(Role.FINANCE).get(url)) == {fin_case.pk}
    assert rows(client_for_role(Role.ADMIN).get(url)) == {cx_case.pk, fin_case.pk}
    # Another queue is one bookmarkable URL away (reading is allowed; acting is not).
    assert rows(client_for_role(Role.CX).get(url, {"owner_role": "Finance"})) == {fin_case.pk}


@pytest.mark.parametrize("field", ["order_ref", "return_ref", "portal_ref", "buyer_postal_code", "tracking_portal",
                                   "tracking_tiktok"])
def test_q_finds_by_order_return_tracking_and_zip(client_for_role, field):
    wanted = ExceptionCaseFactory(buyer_postal_code="10001", tracking_numbers="1ZAAA 9400111")
    ExceptionCaseFactory()
    # A tracking number is found through the returns that carry it, in either system.
    PortalReturnFactory(order_ref=wanted.order_ref, tracking_number="9400111")
    MarketplaceReturnFactory(order_ref=wanted.order_ref, tracking_number="1ZAAA")
    value = {"tracking_portal": "9400111", "tracking_tiktok": "1zaaa"}.get(field) or getattr(wanted, field)
    assert rows(client_for_role(Role.CX).get(reverse("exception_list"), {"q": value})) == {wanted.pk}


def test_filters_sla_assignee_age_and_type(client_for_role, user_for_role):
    me = user_for_role(Role.CX)
    late = ExceptionCaseFactory(due_at=timezone.now() - timedelta(minutes=1))
    soon = ExceptionCaseFactory(due_at=timezone.now() + timedelta(hours=1))
    mine = ExceptionCaseFactory(status=ExceptionStatus.CLAIMED, assignee=me, type_code="status_drift",
                                opened_at=timezone.now() - timedelta(days=5))
    client = client_for_role(Role.CX)
    url = reverse("exception_list")
    assert rows(client.get(url, {"sla": "breached"})) == {late.pk}
    assert rows(client.get(url, {"sla": "due_soon"})) == {soon.pk}
    assert rows(client.get(url, {"assignee": "me"})) == {mine.pk}
    assert rows(client.get(url, {"assignee": "unassigned"})) == {late.pk, soon.pk}
    assert rows(client.get(url, {"age": "older"})) == {mine.pk}
    assert rows(client.get(url, {"type_code": "status_drift"})) == {mine.pk}
    assert rows(client.get(url, {"status": "claimed"})) == {mine.pk}
    for sort in ("due_at", "-opened_at", "severity", "assignee"):
        assert client.get(url, {"sort": sort}).status_code == 200
    assert client.get(url, {"sla": "bogus", "age": "x", "page": "abc"}).status_code == 200


def test_csv_export_has_the_filtered_rows(client_for_role):
    wanted = ExceptionCaseFactory(order_ref="577000000000001")
    ExceptionCaseFactory()
    response = client_for_role(Role.CX).get(reverse("exception_list"), {"q": wanted.order_ref, "export": "csv"})
    table = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert table[0][:3] == ["#", "Exception", "Type"] and "Opened" in table[0] and len(table) == 2
    assert table[1][0] == str(wanted.pk) and wanted.order_ref in table[1]


def test_claim_in_place_returns_the_row_and_counters(client_for_role):
    case = ExceptionCaseFactory()
    response = client_for_role(Role.CX).post(
        reverse("exception_action", args=[case.pk, "claim"]), {"view": "row"}, **HTMX)
    body = response.content.decode()
    assert response.status_code == 200
    assert body.lstrip().startswith(f'<tr id="exception-{case.pk}"') and ">Release</button>" in body
    assert 'id="exception-counters"' in body and 'hx-swap-oob="true"' in body
    assert 'data-count="claimed">1<' in body and 'data-count="mine">1<' in body
    assert "You claimed" in body


def test_losing_a_claim_says_who_won(client_for_role, user_for_role):
    case = ExceptionCaseFactory(status=ExceptionStatus.CLAIMED, assignee=user_for_role(Role.ADMIN))
    body = client_for_role(Role.CX).post(
        reverse("exception_action", args=[case.pk, "claim"]), {"view": "row"}, **HTMX).content.decode()
    assert "admin-user claimed exception" in body


def test_htmx_posts_need_the_csrf_token(user_for_role):
    case = ExceptionCaseFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for_role(Role.CX))
    url = reverse("exception_action", args=[case.pk, "claim"])
    assert client.post(url, {"view": "row"}, **HTMX).status_code == 403
    page = client.get(reverse("exception_list"))
    token = page.cookies["csrftoken"].value
    assert '"X-CSRFToken": "' in page.content.decode()  # base.html hands htmx the token
    assert client.post(url, {"view": "row"}, HTTP_X_CSRFTOKEN=token, **HTMX).status_code == 200
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.CLAIMED


def test_acting_on_another_roles_exception_is_refused(client_for_role):
    case = ExceptionCaseFactory(owner_role=Role.FINANCE)
    for action in ("claim", "resolve", "dismiss", "retry", "comment", "release", "reassign"):
        assert client_for_role(Role.CX).post(reverse("exception_action", args=[case.pk, action]),
                                             **HTMX).status_code == 403
    assert client_for_role(Role.ADMIN).post(reverse("exception_action", args=[case.pk, "claim"]),
                                            **HTMX).status_code == 200


def test_detail_shows_evidence_side_by_side_with_differences(client_for_role):
    case = ExceptionCaseFactory()
    body = client_for_role(Role.CX).get(case.get_absolute_url()).content.decode()
    assert '<tr class="differs" data-differs="true"><td class="field"><code>tracking_number</code>' in body
    assert "<td class=\"field\"><code>carrier</code>" in body  # same on both sides: not highlighted
    assert body.count('data-differs="true"') == 1
    assert ">Claim</button>" in body


def test_detail_for_another_role_is_read_only(client_for_role):
    case = ExceptionCaseFactory(owner_role=Role.FINANCE)
    body = client_for_role(Role.CX).get(case.get_absolute_url()).content.decode()
    assert "you can read it, but only that role or an admin can act" in body
    assert ">Claim</button>" not in body


def test_partial_refund_detail_and_resolution(client_for_role):
    case = partial_refund_case()
    client = client_for_role(Role.FINANCE)
    body = client.get(case.get_absolute_url()).content.decode()
    assert "Partial refund to offer in Seller Center" in body
    assert 'data-field="refund-due">20.00 USD<' in body
    assert "TEE-1" in body and "1 of 2 received" in body and "graded damaged" in body
    url = reverse("exception_action", args=[case.pk, "resolve"])
    body = client.post(url, {"code": ResolutionCode.REFUNDED_MANUALLY, "note": "Done", "resolved_amount": ""},
                       **HTMX).content.decode()
    assert "Enter the amount actually refunded" in body
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.OPEN
    body = client.post(url, {"code": ResolutionCode.REFUNDED_MANUALLY, "note": "Offered in Seller Center",
                             "resolved_amount": "20.00"}, **HTMX).content.decode()
    assert body.startswith('<div id="exception-panel">') or 'id="exception-panel"' in body
    assert 'data-field="resolved-amount"><strong>20.00</strong> USD' in body
    case.refresh_from_db()
    assert case.status == ExceptionStatus.RESOLVED and str(case.resolved_amount) == "20.00"


def test_plain_post_redirects_with_a_message(client_for_role):
    case = ExceptionCaseFactory()
    response = client_for_role(Role.CX).post(reverse("exception_action", args=[case.pk, "dismiss"]), {"reason": ""},
                                             follow=True)
    assert response.redirect_chain[-1][0] == case.get_absolute_url()
    assert "Say why the exception is dismissed" in response.content.decode()


def test_retry_button_requeues_the_dead_write_back(client_for_role):
    dead = WriteBackFactory(status=JobStatus.DEAD, attempts=8, max_attempts=8)
    case = ExceptionCaseFactory(type_code="sync_failure", owner_role=Role.OPERATIONS, write_back=dead)
    client = client_for_role(Role.OPERATIONS)
    assert "Retry the failed step" in client.get(case.get_absolute_url()).content.decode()
    body = client.post(reverse("exception_action", args=[case.pk, "retry"]), **HTMX).content.decode()
    assert "queued again" in body
    dead.refresh_from_db()
    assert dead.status == JobStatus.QUEUED
    body = client.post(reverse("exception_action", args=[case.pk, "retry"]), **HTMX).content.decode()
    assert "Nothing to retry" in body


def test_unknown_action_and_exception_are_404(client_for_role):
    client = client_for_role(Role.CX)
    case = ExceptionCaseFactory()
    assert client.post(reverse("exception_action", args=[case.pk, "explode"])).status_code == 404
    assert client.post(reverse("exception_action", args=[987654, "claim"])).status_code == 404
    assert client.get(reverse("exception_detail", args=[987654])).status_code == 404
    assert client.get(reverse("exception_detail", args=[10**20])).status_code == 404
    assert client.post(reverse("exception_action", args=[10**20, "claim"])).status_code == 404
    body = client.post(reverse("exception_bulk"), {"action": "claim", "ids": [str(10**20), "x"]},
                       **HTMX).content.decode()
    assert "message-error" in body


def test_bulk_claim_then_resolve(client_for_role, user_for_role):
    free = ExceptionCaseFactory.create_batch(2)
    taken = ExceptionCaseFactory(status=ExceptionStatus.CLAIMED, assignee=user_for_role(Role.ADMIN))
    client = client_for_role(Role.CX)
    url = reverse("exception_bulk")
    response = client.post(url, {"action": "claim", "ids": [c.pk for c in [*free, taken]]}, **HTMX)
    body = response.content.decode()
    assert "2 of 3 done." in body and "admin-user" in body
    assert response["HX-Trigger"] == "exceptionsChanged"
    body = client.post(url, {"action": "resolve", "ids": [c.pk for c in free]}, **HTMX).content.decode()
    assert "choose a resolution and write a note" in body
    client.post(url, {"action": "resolve", "ids": [c.pk for c in free], "code": ResolutionCode.NO_ACTION_NEEDED,
                      "note": "Cleared by carrier"}, **HTMX)
    assert ExceptionCase.objects.filter(status=ExceptionStatus.RESOLVED).count() == 2
    assert "Tick at least one" in client.post(url, {"action": "claim"}, **HTMX).content.decode()


def test_runbook_lists_every_type_with_live_counts(client_for_role):
    ExceptionCaseFactory.create_batch(2, type_code="refund_lag", owner_role=Role.FINANCE)
    body = client_for_role(Role.CX).get(reverse("runbook")).content.decode()
    for rule in REGISTRY.values():
        assert escape(rule.title) in body and escape(rule.how_to_resolve) in body
    summary = body[body.index('id="summary-refund_lag"'):]
    assert 'data-count="open">2</a>' in summary[: summary.index("</tr>")]


def test_settings_change_the_sla_shown_on_the_runbook(client_for_role):
    client = client_for_role(Role.ADMIN)
    url = reverse("exception_settings")
    prefix = "refund_lag"
    response = client.post(url, {f"{prefix}-shown": "1", f"{prefix}-is_enabled": "on",
                                 f"{prefix}-sla_0": "1.5", f"{prefix}-sla_1": "hours",
                                 f"{prefix}-t_lag_hours_0": "2", f"{prefix}-t_lag_hours_1": "days"})
    assert response.status_code == 302
    setting = ExceptionTypeSetting.objects.get(type_code="refund_lag")
    assert setting.sla_minutes == 90 and setting.thresholds == {"lag_hours": 48}
    runbook = client.get(reverse("runbook")).content.decode()
    assert "90 min <small class=\"muted\">(default 24 h)</small>" in runbook
    bad = client.post(url, {f"{prefix}-shown": "1", f"{prefix}-sla_0": "90", f"{prefix}-sla_1": "minutes",
                            f"{prefix}-t_lag_hours_0": "soon", f"{prefix}-t_lag_hours_1": "hours"})
    assert bad.status_code == 400 and "Enter a number." in bad.content.decode()
    assert client.post(url, {"type_code": "nope"}).status_code == 302, "a post naming no type changes nothing"


@pytest.mark.parametrize("model", ["exceptioncase", "exceptionactivity", "exceptiontypesetting"])
def test_django_admin_lists_exceptions_read_only(client_for_role, model):
    from tests.exceptions_app.factories import ExceptionActivityFactory
    from tests.factories import UserFactory

    activity = ExceptionActivityFactory(note="claimed by hand")
    ExceptionTypeSetting.objects.create(type_code="refund_lag", sla_minutes=60)
    client = Client()
    client.force_login(UserFactory(username="root", is_superuser=True, is_staff=True))
    assert client.get(reverse(f"admin:exceptions_app_{model}_changelist")).status_code == 200
    pk = {"exceptioncase": activity.exception_id, "exceptionactivity": activity.pk,
          "exceptiontypesetting": ExceptionTypeSetting.objects.get().pk}[model]
    page = client.get(reverse(f"admin:exceptions_app_{model}_change", args=[pk]))
    assert page.status_code == 200 and b'name="_save"' not in page.content
    assert client.get(reverse(f"admin:exceptions_app_{model}_add")).status_code == 403


def test_row_claim_works_without_javascript(user_for_role):
    import re

    case = ExceptionCaseFactory()
    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for_role(Role.CX))
    page = client.get(reverse("exception_list")).content.decode()
    row = page[page.index(f'id="exception-{case.pk}"'):]
    form_action = reverse("exception_action", args=[case.pk, "claim"])
    assert f'<form method="post" action="{form_action}"' in row
    token = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', row).group(1)
    response = client.post(form_action, {"csrfmiddlewaretoken": token, "view": "row"})
    assert response.status_code == 302 and response.url == case.get_absolute_url()
    assert ExceptionCase.objects.get(pk=case.pk).assignee.username == "cx-user"


def test_reassigning_a_colleagues_claim_over_http_is_refused_with_the_reason(client_for_role):
    from exceptions_app import services as case_services
    from tests.factories import UserFactory

    case = ExceptionCaseFactory()
    holder = UserFactory(username="cx-holder", roles=[Role.CX])
    case_services.exception_claim(exception_id=case.pk, user=holder)
    agent = client_for_role(Role.CX)
    me = ExceptionCase.objects.model._meta.get_field("assignee").related_model.objects.get(username="cx-user")
    response = agent.post(reverse("exception_action", args=[case.pk, "reassign"]), {"to_user": me.pk}, **HTMX)
    assert response.status_code == 200
    assert "claimed by cx-holder; only they or an admin may hand it on" in response.content.decode()
    assert ExceptionCase.objects.get(pk=case.pk).assignee == holder
