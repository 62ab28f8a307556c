"""A local factory for exception cases (the exceptions app's own factories live with its
pages): enough to fill the home widgets, the return page and finance's task list."""

from __future__ import annotations

from datetime import timedelta

import factory
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus, SubjectKind
from exceptions_app.models import ExceptionCase
from returnsync.roles import Role


class ExceptionCaseFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = ExceptionCase

    type_code = "refund_lag"
    subject_kind = SubjectKind.MARKETPLACE_RETURN
    subject_id = factory.Sequence(lambda n: 100_000 + n)
    subject_key = factory.LazyAttribute(lambda o: f"{o.subject_kind}:{o.subject_id}")
    owner_role = Role.FINANCE
    status = ExceptionStatus.OPEN
    title = factory.Sequence(lambda n: f"Received but not refunded #{n}")
    opened_at = factory.LazyFunction(timezone.now)
    due_at = factory.LazyFunction(lambda: timezone.now() + timedelta(hours=12))
