"""The exception pages run a fixed number of queries whatever the number of rows."""
from __future__ import annotations

import pytest
from django.urls import reverse

from exceptions_app.choices import ExceptionStatus
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionActivityFactory, ExceptionCaseFactory
from tests.factories import ConnectionFactory, UserFactory
from tests.returnsync.test_query_counts import count_queries

pytestmark = pytest.mark.django_db


def a_case():
    ExceptionCaseFactory(owner_role=Role.CX, connection=ConnectionFactory(),
                         status=ExceptionStatus.CLAIMED, assignee=UserFactory(roles=[Role.CX]))
    ExceptionCaseFactory(owner_role=Role.CX)


@pytest.mark.parametrize("role", [Role.ADMIN, Role.CX], ids=lambda r: r.value)
@pytest.mark.parametrize("params", [{}, {"export": "csv"}, {"per_page": "200", "sla": "ok"}],
                         ids=["page", "csv", "big-page"])
def test_queue_query_count_does_not_grow_with_rows(client_for_role, role, params):
    client = client_for_role(role)
    url = reverse("exception_list")
    for _ in range(2):
        a_case()
    few = count_queries(client, url, **params)
    for _ in range(20):
        a_case()
    assert count_queries(client, url, **params) == few


def test_detail_query_count_does_not_grow_with_activity(client_for_role):
    client = client_for_role(Role.CX)
    case = ExceptionCaseFactory()
    url = case.get_absolute_url()

    def add():
        ExceptionActivityFactory(exception=case, actor=UserFactory(), to_assignee=UserFactory())

    add()
    few = count_queries(client, url)
    for _ in range(10):
        add()
    assert count_queries(client, url) == few


def test_runbook_query_count_does_not_grow_with_cases(client_for_role):
    client = client_for_role(Role.FINANCE)
    url = reverse("runbook")
    ExceptionCaseFactory(type_code="refund_lag")
    few = count_queries(client, url)
    for code in ("refund_lag", "partial_refund", "sync_failure", "status_drift"):
        ExceptionCaseFactory.create_batch(3, type_code=code)
    assert count_queries(client, url) == few
