"""Every exception page and action × role: anonymous → login, wrong role → 403, right
role → 200 (or the redirect after a plain post)."""
from __future__ import annotations

import pytest
from django.urls import reverse

from exceptions_app.choices import ExceptionStatus
from exceptions_app.models import ExceptionCase
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory

pytestmark = pytest.mark.django_db

ACTIONS = ("claim", "release", "reassign", "resolve", "dismiss", "retry", "comment", "offer", "mirror", "resend")
OWNERS = (Role.CX, Role.FINANCE, Role.OPERATIONS)


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: getattr(r, "value", "anonymous"))
def test_detail_is_readable_by_every_role(client_for_role, role):
    case = ExceptionCaseFactory(owner_role=Role.FINANCE)
    response = client_for_role(role).get(case.get_absolute_url())
    if role is None:
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    else:
        assert response.status_code == 200


@pytest.mark.parametrize("action", ACTIONS)
@pytest.mark.parametrize("owner", OWNERS, ids=lambda r: r.value)
@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: getattr(r, "value", "anonymous"))
def test_only_the_owning_role_or_admin_may_act(client_for_role, action, owner, role):
    case = ExceptionCaseFactory(owner_role=owner)
    url = reverse("exception_action", args=[case.pk, action])
    response = client_for_role(role).post(url)
    if role is None:
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
    elif role in (owner, Role.ADMIN):
        assert response.status_code == 302 and response.url == case.get_absolute_url()
    else:
        assert response.status_code == 403
        assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.OPEN
        assert not case.activities.exists()


def test_anonymous_htmx_action_is_sent_to_login_and_changes_nothing(client_for_role):
    case = ExceptionCaseFactory()
    response = client_for_role(None).post(reverse("exception_action", args=[case.pk, "claim"]),
                                          HTTP_HX_REQUEST="true")
    assert response.status_code == 302 and response.url.startswith(reverse("login"))
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.OPEN


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: getattr(r, "value", "anonymous"))
def test_bulk_endpoint_needs_a_role(client_for_role, role):
    response = client_for_role(role).post(reverse("exception_bulk"), {"action": "claim"})
    assert response.status_code == 302
    assert response.url.startswith(reverse("login")) if role is None else response.url == reverse("exception_list")


@pytest.mark.parametrize("role", list(Role), ids=lambda r: r.value)
def test_settings_post_is_admin_only(client_for_role, role):
    response = client_for_role(role).post(reverse("exception_settings"), {"type_code": "refund_lag"})
    assert response.status_code == (302 if role == Role.ADMIN else 403)


def test_get_on_an_action_is_not_allowed(client_for_role):
    case = ExceptionCaseFactory()
    assert client_for_role(Role.CX).get(reverse("exception_action", args=[case.pk, "claim"])).status_code == 405


PAGES = {"exception_list": set(Role), "runbook": set(Role), "exception_settings": {Role.ADMIN}}


@pytest.mark.parametrize("url_name", list(PAGES))
@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: getattr(r, "value", "anonymous"))
def test_pages_per_role_full_and_htmx(client_for_role, url_name, role):
    """(Also generated from NAVIGATION in tests/returnsync/test_permissions.py; here with the
    htmx partial too, which must refuse the same people.)"""
    ExceptionCaseFactory()
    client = client_for_role(role)
    for headers in ({}, {"HTTP_HX_REQUEST": "true"}):
        response = client.get(reverse(url_name), **headers)
        if role is None:
            assert response.status_code == 302 and response.url.startswith(reverse("login"))
        else:
            assert response.status_code == (200 if role in PAGES[url_name] else 403)


def test_bulk_and_settings_posts_need_the_csrf_token(user_for_role):
    from django.test import Client

    client = Client(enforce_csrf_checks=True)
    client.force_login(user_for_role(Role.ADMIN))
    case = ExceptionCaseFactory()
    assert client.post(reverse("exception_bulk"), {"action": "claim", "ids": [case.pk]},
                       HTTP_HX_REQUEST="true").status_code == 403
    assert client.post(reverse("exception_settings"), {"type_code": "refund_lag"}).status_code == 403
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.OPEN
