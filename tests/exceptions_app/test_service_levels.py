"""The service-level page: each clock starts and stops on the facts the docstring of
``exceptions_app.service_levels`` names, counts on its day, shop and portal, and the worst
misses are listed and linked."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.urls import reverse
from django.utils import timezone

from exceptions_app import service_levels
from returnsync.choices import JobStatus, ReleaseState, Stage
from returnsync.roles import Role
from tests.factories import (
    ConnectionFactory,
    MarketplaceReturnFactory,
    PortalConnectionFactory,
    PortalReturnFactory,
    RefundFactory,
    ReturnEventFactory,
    WriteBackFactory,
)

pytestmark = pytest.mark.django_db
H = timedelta(hours=1)


def window(**kwargs):
    today = timezone.localdate()
    return service_levels.Window.of_days(today - timedelta(days=6), today, **kwargs)


def measure(code, **kwargs):
    return next(m for m in service_levels.report(window(**kwargs)) if m.code == code)


def asked(mreturn, *, at, deadline, answered_at=None):
    ReturnEventFactory(marketplace_return=mreturn, occurred_at=at,
                       data={"stage": Stage.REQUESTED, "deadline": deadline.isoformat() if deadline else None})
    if answered_at:
        ReturnEventFactory(marketplace_return=mreturn, occurred_at=answered_at, data={"stage": Stage.APPROVED})


def test_requests_count_on_time_late_and_overdue_against_tiktoks_own_deadline():
    now = timezone.now()
    shop = ConnectionFactory(name="Brand A shop")
    on_time, late, overdue, running = (MarketplaceReturnFactory(order__connection=shop, source_created_at=now - 50 * H)
                                       for _ in range(4))
    asked(on_time, at=now - 50 * H, deadline=now - 2 * H, answered_at=now - 30 * H)
    asked(late, at=now - 50 * H, deadline=now - 2 * H, answered_at=now - 2 * H)  # TikTok approved it itself
    asked(overdue, at=now - 50 * H, deadline=now - 3 * H)
    overdue.stage = Stage.REQUESTED
    overdue.save()
    asked(running, at=now - 50 * H, deadline=None)  # deadline not in the snapshot: the current one serves
    running.stage, running.next_action_deadline = Stage.REQUESTED, now + 5 * H
    running.save()

    m = measure("request")
    assert (m.total.on_time, m.total.late, m.total.overdue, m.total.open) == (1, 1, 1, 1)
    assert m.total.share == pytest.approx(1 / 3)
    assert list(m.by_shop) == ["Brand A shop"] and list(m.by_portal) == [service_levels.NO_PORTAL]
    # Worst first: the open one 3 h past its deadline, then the one answered at the deadline.
    assert [(c.return_id, outcome) for c, outcome, _ in m.worst] == [
        (overdue.return_id, service_levels.OVERDUE), (late.return_id, service_levels.LATE)]
    assert m.worst[0][2].startswith("3 h")


def test_receipts_start_when_the_gate_could_release_and_holds_are_not_counted():
    now = timezone.now()
    portal = PortalConnectionFactory(name="ZigZag EU", options={"refund_release": "on_inspection"})
    quick = PortalReturnFactory(connection=portal, received_at=now - 10 * H, inspected_at=now - 5 * H,
                                release_state=ReleaseState.RELEASED)
    WriteBackFactory(marketplace_return=quick.marketplace_return, status=JobStatus.SUCCEEDED,
                     succeeded_at=now - 5 * H + timedelta(minutes=3))  # 3 min after inspection: on time
    slow = PortalReturnFactory(connection=portal, received_at=now - 10 * H, inspected_at=now - 9 * H,
                               release_state=ReleaseState.RELEASED)
    WriteBackFactory(marketplace_return=slow.marketplace_return, status=JobStatus.SUCCEEDED,
                     succeeded_at=now - 4 * H)  # 5 h after: late
    PortalReturnFactory(connection=portal, received_at=now - 10 * H, release_state=ReleaseState.HELD_SHORT)
    PortalReturnFactory(connection=PortalConnectionFactory(options={"refund_release": "by_portal"}),
                        received_at=now - 10 * H, release_state=ReleaseState.BY_PORTAL)

    m = measure("receipt")
    assert (m.total.on_time, m.total.late, m.total.overdue, m.total.open) == (1, 1, 0, 0)
    assert m.not_counted == {"held by the refund gate on purpose": 1, "whose portal releases the refund itself": 1}
    assert m.worst[0][0].return_id == slow.marketplace_return.return_id and m.worst[0][2] == "3 h"  # 5 h against 2 h
    assert measure("receipt", portal_id=portal.pk).by_portal == {"ZigZag EU": m.by_portal["ZigZag EU"]}


def test_refunds_within_the_refund_lag_threshold_per_day():
    now = timezone.now()
    paid = PortalReturnFactory(received_at=now - 80 * H, release_state=ReleaseState.REFUNDED)
    RefundFactory(marketplace_return=paid.marketplace_return, refunded_at=now - 70 * H)
    unpaid = PortalReturnFactory(received_at=now - 80 * H, release_state=ReleaseState.RELEASED)
    PortalReturnFactory(received_at=now - H, release_state=ReleaseState.RELEASED)  # still in time
    PortalReturnFactory(received_at=now - 80 * H, release_state=ReleaseState.NOT_APPLICABLE)

    m = measure("refund")
    assert (m.total.on_time, m.total.late, m.total.overdue, m.total.open) == (1, 0, 1, 1)
    assert m.not_counted == {"with nothing to refund": 1}
    assert [c.return_id for c, _, _ in m.worst] == [unpaid.marketplace_return.return_id]
    assert sum(t.total for t in m.by_day.values()) == 3
    assert timezone.localtime(now - 80 * H).date() in m.by_day


@pytest.mark.parametrize("role", [None, *Role], ids=lambda r: getattr(r, "value", "anonymous"))
def test_the_page_lists_the_worst_cases_linked_for_every_role(client_for_role, role):
    now = timezone.now()
    late = PortalReturnFactory(received_at=now - 100 * H, release_state=ReleaseState.RELEASED)
    response = client_for_role(role).get(reverse("service_levels"))
    if role is None:
        assert response.status_code == 302 and response.url.startswith(reverse("login"))
        return
    page = response.content.decode()
    refund_card = page.split('data-measure="refund"')[1].split("</section>")[0]
    assert "0% on time" in refund_card and "0 on time · 0 late · 1 overdue · 0 running" in refund_card
    assert reverse("return_detail", args=[late.marketplace_return.pk]) in refund_card
    assert "within 72 h of warehouse receipt" in refund_card


def test_bad_filters_fall_back_to_the_default_period(client_for_role):
    response = client_for_role(Role.CX).get(reverse("service_levels"), {"since": "not-a-date", "shop": "x" * 500})
    assert response.status_code == 200 and "Service levels" in response.content.decode()
