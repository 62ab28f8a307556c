"""Login throttling per user and per address, with a clear message and an admin unlock
(issue 12, item 6; django-axes)."""
from __future__ import annotations

import pytest
from axes.models import AccessAttempt
from django.core.management import call_command
from django.test import Client
from django.urls import reverse

from returnsync.roles import Role
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db
PASSWORD = "right-horse-battery-staple"


@pytest.fixture
def agent():
    user = UserFactory(username="cx-throttle", roles=[Role.CX])
    user.set_password(PASSWORD)
    user.save()
    return user


def attempt(username: str, password: str, address: str = "203.0.113.7"):
    return Client(REMOTE_ADDR=address).post(reverse("login"), {"username": username, "password": password})


def test_after_five_wrong_passwords_even_the_right_one_is_refused_with_a_reason(agent, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT - 1):
        assert attempt(agent.username, "wrong").status_code == 200  # the form says the password is wrong
    locked = attempt(agent.username, "wrong")
    assert locked.status_code == 429
    page = locked.content.decode()
    assert "Too many failed logins" in page and "ask an admin to unlock" in page
    right = attempt(agent.username, PASSWORD, address="198.51.100.9")  # another address: the account is locked
    assert right.status_code == 429 and "_auth_user_id" not in right.client.session


def test_one_address_guessing_many_accounts_is_locked_out_too(agent, settings):
    for n in range(settings.AXES_FAILURE_LIMIT):
        attempt(f"nobody-{n}", "wrong", address="192.0.2.50")
    assert attempt(agent.username, PASSWORD, address="192.0.2.50").status_code == 429
    ok = attempt(agent.username, PASSWORD, address="192.0.2.51")  # the account itself is fine elsewhere
    assert ok.status_code == 302 and ok.url == reverse("home")


def test_an_admin_unlocks_in_django_admin_or_with_the_command(agent, settings):
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(agent.username, "wrong")
    assert attempt(agent.username, PASSWORD).status_code == 429
    admin = Client()
    admin.force_login(UserFactory(username="adm", roles=[Role.ADMIN], is_staff=True, is_superuser=True))
    listing = admin.get(reverse("admin:axes_accessattempt_changelist"))
    assert listing.status_code == 200 and agent.username in listing.content.decode()
    ids = list(AccessAttempt.objects.values_list("pk", flat=True))
    admin.post(reverse("admin:axes_accessattempt_changelist"),
               {"action": "delete_selected", "_selected_action": ids, "post": "yes"})
    assert not AccessAttempt.objects.exists()
    assert attempt(agent.username, PASSWORD).status_code == 302
    for _ in range(settings.AXES_FAILURE_LIMIT):
        attempt(agent.username, "wrong")
    call_command("axes_reset_username", agent.username)
    assert attempt(agent.username, PASSWORD, address="203.0.113.8").status_code == 302
