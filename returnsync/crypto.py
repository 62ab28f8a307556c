"""Encryption at rest for credentials (Fernet, keys from FIELD_ENCRYPTION_KEY).

FIELD_ENCRYPTION_KEY holds one or more comma-separated Fernet keys: the first
encrypts, every one decrypts, so a key can be rotated by prepending the new one.
A value that no configured key can decrypt is never thrown away: it is carried
through as ``Undecryptable`` and written back unchanged.
"""
from __future__ import annotations

import json
import logging
from functools import lru_cache
from typing import Any

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from django.conf import settings
from django.db import models

log = logging.getLogger(__name__)


@lru_cache(maxsize=4)
def _fernet(keys: str) -> MultiFernet:
    return MultiFernet([Fernet(key.strip().encode()) for key in keys.split(",") if key.strip()])


def fernet() -> MultiFernet:
    return _fernet(settings.FIELD_ENCRYPTION_KEY)


def encrypt_text(value: str) -> str:
    return fernet().encrypt(value.encode("utf-8")).decode("ascii")


def decrypt_text(token: str) -> str:
    return fernet().decrypt(token.encode("ascii")).decode("utf-8")


class Undecryptable(str):
    """Ciphertext no configured key opens. Falsy, so callers treat it as absent."""

    def __bool__(self) -> bool:
        return False

    def __repr__(self) -> str:
        return "<undecryptable secret>"


class EncryptedTextField(models.TextField):
    """A text column stored as a Fernet token; Python code only sees the plain text."""

    def from_db_value(self, value, expression, connection):
        return self._decrypt(value)

    def _decrypt(self, value):
        if value is None or value == "":
            return value
        try:
            return decrypt_text(value)
        except (InvalidToken, ValueError):
            log.warning("%s: stored value cannot be decrypted with the configured keys", self)
            return Undecryptable(value)

    def get_prep_value(self, value):
        if isinstance(value, Undecryptable):
            return str.__str__(value)  # the stored ciphertext, untouched
        value = super().get_prep_value(value)
        if value is None or value == "":
            return value
        return encrypt_text(value)


class EncryptedJSONField(EncryptedTextField):
    """A JSON object stored encrypted; reads back as a dict."""

    def from_db_value(self, value, expression, connection):
        plain = self._decrypt(value)
        if not plain or isinstance(plain, Undecryptable):
            return plain if isinstance(plain, Undecryptable) else {}
        return json.loads(plain)

    def to_python(self, value: Any):
        if isinstance(value, dict) or isinstance(value, Undecryptable):
            return value
        if not value:
            return {}
        return json.loads(value)

    def get_prep_value(self, value):
        if isinstance(value, Undecryptable):
            return str.__str__(value)
        if value is None or value == {}:
            return ""
        return encrypt_text(json.dumps(value, sort_keys=True))
