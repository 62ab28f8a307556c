"""Email digests: one mail per owning role however many cases, never the same case twice."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core import mail
from django.utils import timezone

from exceptions_app.choices import ExceptionStatus, Severity
from exceptions_app.models import ExceptionCase
from exceptions_app.notifications import exception_digests_send
from exceptions_app.notify_tasks import schedules_ensure
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory
from tests.factories import UserFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def members():
    UserFactory(username="fin-a", email="fin-a@example.com", roles=[Role.FINANCE])
    UserFactory(username="fin-b", email="fin-b@example.com", roles=[Role.FINANCE])
    UserFactory(username="fin-no-mail", email="", roles=[Role.FINANCE])
    UserFactory(username="cx-a", email="cx-a@example.com", roles=[Role.CX])


def test_a_surge_of_500_is_one_digest_per_role(members):
    ExceptionCaseFactory.create_batch(500, owner_role=Role.FINANCE, severity=Severity.HIGH)
    ExceptionCaseFactory(owner_role=Role.CX, severity=Severity.CRITICAL, title="Refund outside portal 1")
    ExceptionCaseFactory(owner_role=Role.CX, severity=Severity.LOW, title="Low one")

    sent = exception_digests_send()

    assert sent == {Role.FINANCE.value: 500, Role.CX.value: 1}
    assert len(mail.outbox) == 2
    finance = next(m for m in mail.outbox if "Finance" in m.subject)
    assert sorted(finance.to) == ["fin-a@example.com", "fin-b@example.com"]
    assert "500 new high-severity" in finance.subject and "and 450 more" in finance.body
    cx = next(m for m in mail.outbox if "CX" in m.subject)
    assert cx.to == ["cx-a@example.com"] and "Refund outside portal 1" in cx.body and "Low one" not in cx.body
    assert not ExceptionCase.objects.filter(severity=Severity.HIGH, notified_at__isnull=True).exists()

    mail.outbox.clear()
    assert exception_digests_send() == {}
    assert mail.outbox == []


def test_breach_is_mailed_once_even_for_low_severity(members):
    late = ExceptionCaseFactory(owner_role=Role.CX, severity=Severity.LOW, due_at=timezone.now() - timedelta(hours=1))
    ExceptionCaseFactory(owner_role=Role.CX, severity=Severity.LOW, status=ExceptionStatus.RESOLVED,
                         due_at=timezone.now() - timedelta(hours=1))

    exception_digests_send()

    assert len(mail.outbox) == 1 and "1 past SLA" in mail.outbox[0].subject
    assert f"#{late.pk}" in mail.outbox[0].body
    late.refresh_from_db()
    assert late.breached_at and late.breach_notified_at
    mail.outbox.clear()
    exception_digests_send()
    assert mail.outbox == []


def test_the_digest_is_scheduled_once():
    from django_q.models import Schedule

    schedules_ensure()
    schedules_ensure()
    assert Schedule.objects.filter(func="exceptions_app.notify_tasks.exception_digests").count() == 1
