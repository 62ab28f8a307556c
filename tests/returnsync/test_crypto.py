"""Connection secrets are encrypted at rest, survive key rotation, and are never lost to a
missing key."""
from __future__ import annotations

import pytest
from cryptography.fernet import Fernet
from django.db import connection as db
from django.test import override_settings

from returnsync.crypto import Undecryptable
from returnsync.models import Connection
from tests.factories import ConnectionFactory

pytestmark = pytest.mark.django_db

CREDENTIALS = {"app_key": "demo-app-key-123", "app_secret": "s3cr3t-app-secret"}
WEBHOOK_SECRET = "whsec-demo-secret"


def raw_secret_columns(pk: int) -> tuple[str, str]:
    """The credentials and webhook_secret columns as the database holds them."""
    table = db.ops.quote_name(Connection._meta.db_table)
    with db.cursor() as cursor:
        cursor.execute(f"SELECT credentials, webhook_secret FROM {table} WHERE id = %s", [pk])
        return cursor.fetchone()


def new_key() -> str:
    return Fernet.generate_key().decode()


def test_secrets_are_stored_encrypted_and_read_back_plain():
    conn = ConnectionFactory(credentials=CREDENTIALS, webhook_secret=WEBHOOK_SECRET)

    raw_credentials, raw_webhook_secret = raw_secret_columns(conn.pk)
    for secret in [*CREDENTIALS.values(), "app_secret", WEBHOOK_SECRET]:
        assert secret not in raw_credentials
        assert secret not in raw_webhook_secret
    assert raw_credentials and raw_webhook_secret

    stored = Connection.objects.get(pk=conn.pk)
    assert stored.credentials == CREDENTIALS
    assert stored.webhook_secret == WEBHOOK_SECRET


def test_empty_secrets_read_back_empty():
    conn = ConnectionFactory(credentials={}, webhook_secret="")

    stored = Connection.objects.get(pk=conn.pk)
    assert stored.credentials == {}
    assert stored.webhook_secret == ""
    assert not stored.has_credentials


def test_value_written_with_the_old_key_reads_after_a_new_key_is_prepended():
    old, new = new_key(), new_key()
    with override_settings(FIELD_ENCRYPTION_KEY=old):
        conn = ConnectionFactory(credentials=CREDENTIALS, webhook_secret=WEBHOOK_SECRET)

    with override_settings(FIELD_ENCRYPTION_KEY=f"{new},{old}"):
        stored = Connection.objects.get(pk=conn.pk)
        assert stored.credentials == CREDENTIALS
        assert stored.webhook_secret == WEBHOOK_SECRET
        stored.save()  # re-encrypts with the new (first) key

    with override_settings(FIELD_ENCRYPTION_KEY=new):  # the old key can now be retired
        stored = Connection.objects.get(pk=conn.pk)
        assert stored.credentials == CREDENTIALS
        assert stored.webhook_secret == WEBHOOK_SECRET


def test_value_no_configured_key_opens_is_falsy_and_kept_byte_for_byte():
    lost, current = new_key(), new_key()
    with override_settings(FIELD_ENCRYPTION_KEY=lost):
        conn = ConnectionFactory(credentials=CREDENTIALS, webhook_secret=WEBHOOK_SECRET)
    ciphertext = raw_secret_columns(conn.pk)

    with override_settings(FIELD_ENCRYPTION_KEY=current):
        stored = Connection.objects.get(pk=conn.pk)
        assert isinstance(stored.credentials, Undecryptable)
        assert isinstance(stored.webhook_secret, Undecryptable)
        assert not stored.credentials
        assert not stored.webhook_secret
        assert not stored.has_credentials
        assert "s3cr3t" not in repr(stored.credentials)

        stored.name = "Renamed while the key was missing"
        stored.save()
        assert raw_secret_columns(conn.pk) == ciphertext

    with override_settings(FIELD_ENCRYPTION_KEY=lost):  # the key comes back: nothing was lost
        stored = Connection.objects.get(pk=conn.pk)
        assert stored.name == "Renamed while the key was missing"
        assert stored.credentials == CREDENTIALS
        assert stored.webhook_secret == WEBHOOK_SECRET
