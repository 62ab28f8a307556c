"""Twenty people claim the same exception at the same instant: exactly one wins, the
others are told who did. Needs real concurrent connections, so PostgreSQL only (SQLite
serialises writers at the file level and the test would prove nothing there)."""
from __future__ import annotations

import threading

import pytest
from django.db import connection, connections

from exceptions_app.choices import ActivityVerb, ExceptionStatus
from exceptions_app.services import exception_claim
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory
from tests.factories import UserFactory

CLAIMERS = 20

pytestmark = [
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="needs concurrent connections (PostgreSQL)"),
]


def test_twenty_concurrent_claims_exactly_one_wins():
    case = ExceptionCaseFactory(owner_role=Role.CX)
    users = [UserFactory(username=f"agent-{i}", roles=[Role.CX]) for i in range(CLAIMERS)]
    barrier = threading.Barrier(CLAIMERS)
    results, errors = [], []

    def claim(user):
        try:
            barrier.wait(timeout=30)
            results.append(exception_claim(exception_id=case.pk, user=user))
        except Exception as error:
            errors.append(error)
        finally:
            connections.close_all()  # each thread had its own connection

    threads = [threading.Thread(target=claim, args=(user,)) for user in users]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=60)

    assert not errors, errors
    assert len(results) == CLAIMERS
    winners = [r for r in results if r.won]
    assert len(winners) == 1
    winner = winners[0].holder
    assert all(r.holder == winner and winner.username in r.message for r in results if not r.won)
    case.refresh_from_db()
    assert case.status == ExceptionStatus.CLAIMED and case.assignee == winner
    assert list(case.activities.values_list("verb", "actor")) == [(ActivityVerb.CLAIMED, winner.pk)]
