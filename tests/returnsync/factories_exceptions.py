"""The exceptions app's factory with the defaults the dashboard tests read best with: a
finance case (refund lag) on a TikTok return."""

from __future__ import annotations

import factory

from exceptions_app.choices import SubjectKind
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory as BaseExceptionCaseFactory


class ExceptionCaseFactory(BaseExceptionCaseFactory):
    type_code = "refund_lag"
    subject_kind = SubjectKind.MARKETPLACE_RETURN
    subject_id = factory.Sequence(lambda n: 100_000 + n)
    owner_role = Role.FINANCE
    title = factory.Sequence(lambda n: f"Received but not refunded #{n}")
