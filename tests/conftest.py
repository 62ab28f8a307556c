from __future__ import annotations

import pytest
from django.test import Client

from returnsync.roles import Role
from tests.factories import UserFactory


@pytest.fixture(autouse=True)
def _fast_password_hashing(settings):
    """Tests log in thousands of times; the production hasher is deliberately slow."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def user_for_role(db):
    """Make (or fetch) a user holding exactly one role."""

    def make(role: Role):
        return UserFactory(username=f"{str(role).lower()}-user", roles=[role])

    return make


@pytest.fixture
def client_for_role(user_for_role):
    """A logged-in test client for a role (``None`` for an anonymous client)."""

    def make(role: Role | None) -> Client:
        client = Client()
        if role is not None:
            client.force_login(user_for_role(role))
        return client

    return make
