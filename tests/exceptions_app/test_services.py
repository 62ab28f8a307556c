"""The exception lifecycle as people drive it: claim, release, reassign, resolve, dismiss,
retry, with an activity row for every step and refusals that say why."""
from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
from django.core.exceptions import PermissionDenied
from django.db import IntegrityError, transaction
from django.utils import timezone

from exceptions_app import services
from exceptions_app.choices import ActivityVerb, ExceptionStatus, ResolutionCode
from exceptions_app.models import ExceptionCase
from exceptions_app.rules import rule_for
from returnsync.choices import InboundStatus, JobStatus
from returnsync.roles import Role
from tests.exceptions_app.factories import ExceptionCaseFactory, partial_refund_case
from tests.factories import InboundEventFactory, UserFactory, WriteBackFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def cx():
    return UserFactory(username="cx-ann", first_name="Ann", roles=[Role.CX])


@pytest.fixture
def cx2():
    return UserFactory(username="cx-bob", first_name="Bob", roles=[Role.CX])


@pytest.fixture
def finance():
    return UserFactory(username="fin-fay", roles=[Role.FINANCE])


@pytest.fixture
def admin():
    return UserFactory(username="adm-ada", roles=[Role.ADMIN])


def verbs(case):
    return list(case.activities.values_list("verb", flat=True))


def test_claim_wins_once_and_the_loser_is_told_who_won(cx, cx2):
    case = ExceptionCaseFactory()
    first = services.exception_claim(exception_id=case.pk, user=cx)
    second = services.exception_claim(exception_id=case.pk, user=cx2)
    assert first.won and not second.won
    assert second.holder == cx and "Ann" in second.message
    case.refresh_from_db()
    assert case.status == ExceptionStatus.CLAIMED and case.assignee == cx and case.claimed_at
    activity = case.activities.get()
    assert (activity.verb, activity.actor, activity.from_status, activity.to_status, activity.to_assignee) == (
        ActivityVerb.CLAIMED, cx, ExceptionStatus.OPEN, ExceptionStatus.CLAIMED, cx)


def test_another_roles_exception_is_refused_unless_admin(finance, admin):
    case = ExceptionCaseFactory(owner_role=Role.CX)
    with pytest.raises(PermissionDenied, match="belongs to CX agent"):
        services.exception_claim(exception_id=case.pk, user=finance)
    assert services.exception_claim(exception_id=case.pk, user=admin).won


def test_release_puts_it_back_and_only_the_assignee_may(cx, cx2):
    case = ExceptionCaseFactory()
    services.exception_claim(exception_id=case.pk, user=cx)
    with pytest.raises(services.ExceptionActionError, match="claimed by Ann"):
        services.exception_release(exception_id=case.pk, user=cx2)
    services.exception_release(exception_id=case.pk, user=cx)
    case.refresh_from_db()
    assert case.status == ExceptionStatus.OPEN and case.assignee is None
    assert verbs(case) == [ActivityVerb.CLAIMED, ActivityVerb.RELEASED]
    assert case.activities.last().from_assignee == cx


def test_reassign_hands_over_to_a_member_of_the_role(cx, cx2, finance):
    case = ExceptionCaseFactory()
    services.exception_claim(exception_id=case.pk, user=cx)
    with pytest.raises(services.ExceptionActionError, match="does not hold"):
        services.exception_reassign(exception_id=case.pk, user=cx, to_user=finance)
    services.exception_reassign(exception_id=case.pk, user=cx, to_user=cx2)
    case.refresh_from_db()
    assert case.assignee == cx2
    last = case.activities.last()
    assert (last.verb, last.from_assignee, last.to_assignee) == (ActivityVerb.REASSIGNED, cx, cx2)


def test_resolve_needs_a_code_and_a_note_and_records_them(cx):
    case = ExceptionCaseFactory()
    with pytest.raises(services.ExceptionActionError, match="resolution code"):
        services.exception_resolve(exception_id=case.pk, user=cx, code="", note="x")
    with pytest.raises(services.ExceptionActionError, match="note"):
        services.exception_resolve(exception_id=case.pk, user=cx, code=ResolutionCode.FIXED_IN_SOURCE, note=" ")
    services.exception_resolve(exception_id=case.pk, user=cx, code=ResolutionCode.FIXED_IN_SOURCE,
                               note="Corrected tracking in ZigZag")
    case.refresh_from_db()
    assert case.status == ExceptionStatus.RESOLVED and case.closed_by == cx and case.closed_at
    assert case.resolution_code == ResolutionCode.FIXED_IN_SOURCE
    assert case.activities.get().note == "Corrected tracking in ZigZag"
    with pytest.raises(services.ExceptionActionError, match="already resolved"):
        services.exception_release(exception_id=case.pk, user=cx)


def test_a_closed_case_cannot_be_claimed(cx):
    case = ExceptionCaseFactory(status=ExceptionStatus.DISMISSED)
    result = services.exception_claim(exception_id=case.pk, user=cx)
    assert not result.won and "already dismissed" in result.message


def test_partial_refund_resolution_records_the_amount_refunded(finance):
    case = partial_refund_case()
    assert case.amount == Decimal("20.00")  # one tee of two back; the damaged cap withheld
    with pytest.raises(services.ExceptionActionError, match="amount actually refunded"):
        services.exception_resolve(exception_id=case.pk, user=finance, code=ResolutionCode.REFUNDED_MANUALLY,
                                   note="Offered in Seller Center")
    services.exception_resolve(exception_id=case.pk, user=finance, code=ResolutionCode.REFUNDED_MANUALLY,
                               note="Offered in Seller Center", resolved_amount=Decimal(20))
    case.refresh_from_db()
    assert case.resolved_amount == Decimal("20.00")
    assert case.activities.get().data["resolved_amount"] == "20.00"


def test_someone_elses_claim_cannot_be_resolved_or_dismissed_but_admin_can(cx, cx2, admin):
    case = ExceptionCaseFactory()
    services.exception_claim(exception_id=case.pk, user=cx)
    with pytest.raises(services.ExceptionActionError, match="claimed by Ann"):
        services.exception_dismiss(exception_id=case.pk, user=cx2, reason="dup")
    services.exception_dismiss(exception_id=case.pk, user=admin, reason="Duplicate of #12")
    case.refresh_from_db()
    assert case.status == ExceptionStatus.DISMISSED and case.resolution_note == "Duplicate of #12"


def test_dismiss_needs_a_reason(cx):
    case = ExceptionCaseFactory()
    with pytest.raises(services.ExceptionActionError, match="why"):
        services.exception_dismiss(exception_id=case.pk, user=cx, reason="")
    assert verbs(case) == []


def test_only_one_active_case_per_type_and_subject_is_a_database_rule():
    case = ExceptionCaseFactory()
    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionCaseFactory(type_code=case.type_code, subject_kind=case.subject_kind, subject_id=case.subject_id)
    case.status = ExceptionStatus.RESOLVED
    case.save()
    ExceptionCaseFactory(type_code=case.type_code, subject_kind=case.subject_kind, subject_id=case.subject_id)


def test_retry_requeues_only_the_failed_write_back(django_capture_on_commit_callbacks):
    ops = UserFactory(username="ops-oli", roles=[Role.OPERATIONS])
    dead = WriteBackFactory(status=JobStatus.DEAD, attempts=8, max_attempts=8, last_error="HTTP 503")
    case = ExceptionCaseFactory(type_code="sync_failure", owner_role=Role.OPERATIONS, write_back=dead)
    with django_capture_on_commit_callbacks(execute=True):
        services.exception_retry(exception_id=case.pk, user=ops)
    dead.refresh_from_db()
    assert dead.status == JobStatus.QUEUED and dead.max_attempts > dead.attempts
    assert case.activities.get().verb == ActivityVerb.RETRIED

    done = WriteBackFactory(status=JobStatus.SUCCEEDED)
    other = ExceptionCaseFactory(type_code="sync_failure", owner_role=Role.OPERATIONS, write_back=done)
    with pytest.raises(services.ExceptionActionError, match="Nothing to retry"):
        services.exception_retry(exception_id=other.pk, user=ops)
    done.refresh_from_db()
    assert done.status == JobStatus.SUCCEEDED and verbs(other) == []


def test_retry_reprocesses_a_dead_letter():
    ops = UserFactory(username="ops-oli", roles=[Role.OPERATIONS])
    event = InboundEventFactory(status=InboundStatus.FAILED, error="KeyError")
    case = ExceptionCaseFactory(type_code="sync_failure", owner_role=Role.OPERATIONS, inbound_event=event)
    services.exception_retry(exception_id=case.pk, user=ops)
    event.refresh_from_db()
    assert event.status == InboundStatus.RECEIVED


def test_bulk_claim_reports_each_id(cx, cx2, finance):
    mine, taken, finances = ExceptionCaseFactory(), ExceptionCaseFactory(), ExceptionCaseFactory(owner_role=Role.FINANCE)
    services.exception_claim(exception_id=taken.pk, user=cx2)
    outcomes = {o.exception_id: o for o in services.exception_bulk_claim(
        exception_ids=[mine.pk, taken.pk, finances.pk, 999999], user=cx)}
    assert outcomes[mine.pk].ok
    assert not outcomes[taken.pk].ok and "Bob" in outcomes[taken.pk].message
    assert not outcomes[finances.pk].ok and "Finance" in outcomes[finances.pk].message
    assert not outcomes[999999].ok and "does not exist" in outcomes[999999].message


def test_bulk_resolve(cx):
    cases = ExceptionCaseFactory.create_batch(3)
    outcomes = services.exception_bulk_resolve(exception_ids=[c.pk for c in cases], user=cx,
                                               code=ResolutionCode.NO_ACTION_NEEDED, note="Carrier fixed it")
    assert all(o.ok for o in outcomes)
    assert ExceptionCase.objects.filter(status=ExceptionStatus.RESOLVED).count() == 3


def test_settings_override_sla_and_thresholds_by_the_defaults_type(admin, cx):
    with pytest.raises(PermissionDenied):
        services.exception_settings_update(type_code="refund_lag", user=cx, sla_minutes=60)
    with pytest.raises(services.ExceptionActionError, match="lag_hours"):
        services.exception_settings_update(type_code="refund_lag", user=admin, thresholds={"lag_hours": "soon"})
    with pytest.raises(services.ExceptionActionError, match="no threshold"):
        services.exception_settings_update(type_code="refund_lag", user=admin, thresholds={"nope": 1})
    with pytest.raises(services.ExceptionActionError, match="tolerance_amount"):
        services.exception_settings_update(type_code="refund_mismatch", user=admin,
                                           thresholds={"tolerance_amount": "-1"})
    services.exception_settings_update(type_code="refund_lag", user=admin, sla_minutes=90,
                                       thresholds={"lag_hours": "48"}, is_enabled=False)
    rule = rule_for("refund_lag")
    assert rule.effective_sla == timedelta(minutes=90)
    assert rule.threshold("lag_hours") == 48 and not rule.enabled
    services.exception_settings_update(type_code="refund_mismatch", user=admin,
                                       thresholds={"tolerance_amount": "1.25"})
    assert rule_for("refund_mismatch").threshold("tolerance_amount") == "1.25"


def test_breach_is_stamped_once_with_an_activity():
    late = ExceptionCaseFactory(due_at=timezone.now() - timedelta(minutes=5))
    ExceptionCaseFactory(due_at=timezone.now() + timedelta(hours=1))
    assert services.exceptions_mark_breached() == [late.pk]
    assert services.exceptions_mark_breached() == []
    late.refresh_from_db()
    assert late.breached_at and verbs(late) == [ActivityVerb.BREACHED]


@pytest.mark.parametrize("role", [Role.CX, Role.FINANCE])
def test_reassign_never_takes_over_a_colleagues_claim(role):
    """Issue 12 item 2: an agent reassigned cx2's claim to themselves and resolved it."""
    owner = UserFactory(username=f"{role}-owner", roles=[role])
    colleague = UserFactory(username=f"{role}-colleague", roles=[role])
    third = UserFactory(username=f"{role}-third", roles=[role])
    case = ExceptionCaseFactory(owner_role=role)
    services.exception_claim(exception_id=case.pk, user=owner)
    for target in (colleague, third):
        with pytest.raises(services.ExceptionActionError, match="only they or an admin may hand it on"):
            services.exception_reassign(exception_id=case.pk, user=colleague, to_user=target)
    with pytest.raises(services.ExceptionActionError, match="claimed by"):
        services.exception_resolve(exception_id=case.pk, user=colleague, code=ResolutionCode.values[0], note="mine now",
                                   resolved_amount=Decimal("1.00"))
    case.refresh_from_db()
    assert (case.status, case.assignee) == (ExceptionStatus.CLAIMED, owner)
    assert ActivityVerb.REASSIGNED not in verbs(case)
    # The assignee may hand it on, and so may an admin.
    services.exception_reassign(exception_id=case.pk, user=owner, to_user=colleague)
    admin = UserFactory(username=f"{role}-admin", roles=[Role.ADMIN])
    services.exception_reassign(exception_id=case.pk, user=admin, to_user=third)
    case.refresh_from_db()
    assert case.assignee == third


def test_reassign_by_another_role_is_refused_before_anything_about_the_case_is_said(cx, finance):
    case = ExceptionCaseFactory(owner_role=Role.FINANCE, type_code="partial_refund")
    services.exception_claim(exception_id=case.pk, user=finance)
    with pytest.raises(PermissionDenied) as refused:
        services.exception_reassign(exception_id=case.pk, user=cx, to_user=cx)
    assert "partial" not in str(refused.value).lower() and finance.username not in str(refused.value)


def test_an_open_case_may_be_assigned_by_anyone_of_its_role(cx, cx2):
    case = ExceptionCaseFactory()
    services.exception_reassign(exception_id=case.pk, user=cx, to_user=cx2)
    case.refresh_from_db()
    assert (case.status, case.assignee) == (ExceptionStatus.CLAIMED, cx2)


def test_recording_more_than_remains_to_refund_asks_for_confirmation(finance):
    case = partial_refund_case(evidence={"computed": {"remaining": "11.65", "action": "refund"}})
    with pytest.raises(services.ExceptionActionError, match="more than the 11.65"):
        services.exception_resolve(exception_id=case.pk, user=finance, code=ResolutionCode.REFUNDED_MANUALLY,
                                   note="Refunded in Seller Center", resolved_amount=Decimal("21.65"))
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.OPEN
    services.exception_resolve(exception_id=case.pk, user=finance, code=ResolutionCode.REFUNDED_MANUALLY,
                               note="Refunded in Seller Center", resolved_amount=Decimal("21.65"), confirm_over=True)
    assert ExceptionCase.objects.get(pk=case.pk).resolved_amount == Decimal("21.65")


def test_a_recovery_resolves_without_an_amount_refunded(finance):
    case = partial_refund_case(evidence={"computed": {"to_recover": "16.24", "action": "recover"}})
    services.exception_resolve(exception_id=case.pk, user=finance, code=ResolutionCode.RECOVERY_STARTED,
                               note="Asked the buyer to pay back 16.24")
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.RESOLVED


def test_an_approval_deadline_cannot_be_resolved_while_tiktok_still_waits(cx):
    from exceptions_app.detection import detection_run
    from exceptions_app.rules.base import Scope
    from returnsync.choices import Stage
    from tests.factories import MarketplaceReturnFactory

    mreturn = MarketplaceReturnFactory(stage=Stage.REQUESTED, next_action="SELLER_RESPOND_REFUND",
                                       next_action_deadline=timezone.now() + timedelta(hours=3))
    detection_run(scope=Scope())
    case = ExceptionCase.objects.get(type_code="approval_deadline", marketplace_return=mreturn)
    with pytest.raises(services.ExceptionActionError, match="TikTok still waits for the seller's answer"):
        services.exception_resolve(exception_id=case.pk, user=cx, code=ResolutionCode.CUSTOMER_CONTACTED,
                                   note="Called the buyer")
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.OPEN  # it stays in view
    mreturn.stage, mreturn.next_action = Stage.APPROVED, ""  # TikTok agrees: the seller answered
    mreturn.save()
    services.exception_resolve(exception_id=case.pk, user=cx, code=ResolutionCode.CUSTOMER_CONTACTED,
                               note="Approved after calling the buyer")
    assert ExceptionCase.objects.get(pk=case.pk).status == ExceptionStatus.RESOLVED
