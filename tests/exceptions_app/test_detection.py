"""The engine: one active case per subject, reopen, human closes respected, scope, overlap, SLA, evidence."""
from __future__ import annotations

from datetime import timedelta

import pytest
from django.core.management import call_command
from django.db import IntegrityError, transaction
from django.utils import timezone
from django_q.models import OrmQ, Schedule

from exceptions_app.choices import ActivityVerb, ExceptionStatus
from exceptions_app.detection import detection_run
from exceptions_app.models import ExceptionCase, ExceptionTypeSetting
from exceptions_app.rules import rule_for
from exceptions_app.rules.base import Scope
from exceptions_app.tasks import detect_full, detect_incremental
from returnsync.choices import SyncRunStatus
from returnsync.models import SyncRun
from returnsync.services import changes_notify
from tests.factories import PortalReturnFactory

pytestmark = pytest.mark.django_db


def mismatched(portal="1ZAAA111", tiktok="1ZBBB222"):
    return PortalReturnFactory(tracking_number=portal, marketplace_return__tracking_number=tiktok)


def run(*, now=None, scope: Scope | None = None):
    counts = detection_run(scope=scope or Scope(), now=now, rules=[rule_for("tracking_mismatch")])
    return counts["tracking_mismatch"]


def verbs(case) -> list[str]:
    return list(case.activities.order_by("id").values_list("verb", flat=True))


def set_tracking(pr, number):
    pr.tracking_number = number
    pr.save()


def test_two_passes_keep_one_active_case_and_the_database_refuses_a_second():
    mismatched()
    assert run()["opened"] == 1
    counts = run()
    assert (counts["opened"], counts["refreshed"]) == (0, 1)
    case = ExceptionCase.objects.get()
    with pytest.raises(IntegrityError), transaction.atomic():
        ExceptionCase.objects.create(type_code=case.type_code, subject_kind=case.subject_kind,
                                     subject_id=case.subject_id, subject_key=case.subject_key,
                                     owner_role=case.owner_role, title="duplicate")


def test_auto_resolved_case_reopens_when_the_condition_comes_back():
    pr = mismatched()
    run()
    set_tracking(pr, "1ZBBB222")
    assert run()["auto_resolved"] == 1
    set_tracking(pr, "1ZCCC333")
    assert run()["reopened"] == 1
    case = ExceptionCase.objects.get()
    assert case.status == ExceptionStatus.OPEN and case.reopen_count == 1 and case.closed_at is None
    assert case.evidence["computed"]["portal_tracking"] == "1ZCCC333"
    assert verbs(case) == ["opened", "auto_resolved", "reopened"]
    auto = case.activities.get(verb=ActivityVerb.AUTO_RESOLVED)
    assert (auto.actor, auto.from_status, auto.to_status) == (None, "open", "auto_resolved")
    assert auto.data["evidence"]["computed"]["portal_tracking"] == "1ZAAA111"


def test_a_case_a_person_resolved_is_not_raised_again_for_the_same_problem_but_is_for_a_new_one():
    pr = mismatched()
    run()
    ExceptionCase.objects.update(status=ExceptionStatus.RESOLVED, closed_at=timezone.now())
    assert run()["suppressed"] == 1
    assert ExceptionCase.objects.count() == 1
    set_tracking(pr, "1ZDDD444")
    assert run()["opened"] == 1
    assert list(ExceptionCase.objects.order_by("id").values_list("status", flat=True)) == ["resolved", "open"]


def test_incremental_pass_only_touches_the_given_orders():
    a, b = mismatched(), mismatched()
    counts = run(scope=Scope(order_refs=frozenset({a.order_ref})))
    assert counts["opened"] == 1
    assert ExceptionCase.objects.get().order_ref == a.order_ref
    run()
    set_tracking(a, "1ZBBB222")
    set_tracking(b, "1ZBBB222")
    run(scope=Scope(order_refs=frozenset({a.order_ref})))
    statuses = dict(ExceptionCase.objects.values_list("order_ref", "status"))
    assert statuses == {a.order_ref: "auto_resolved", b.order_ref: "open"}


def test_full_pass_refuses_to_overlap_itself_and_takes_over_a_dead_workers_lease():
    running = SyncRun.objects.create(job="detect_full", status=SyncRunStatus.RUNNING, started_at=timezone.now())
    assert "skipped" in detect_full()
    assert SyncRun.objects.filter(job="detect_full").count() == 1
    SyncRun.objects.filter(pk=running.pk).update(started_at=timezone.now() - timedelta(hours=1))
    mismatched()
    result = detect_full()
    assert result["opened"] == 1 and result["types"]["tracking_mismatch"]["opened"] == 1
    running.refresh_from_db()
    assert running.status == SyncRunStatus.FAILED and "Lease expired" in running.error
    latest = SyncRun.objects.filter(job="detect_full").latest("id")
    assert latest.status == SyncRunStatus.SUCCEEDED and latest.counts["opened"] == 1 and latest.finished_at


def test_sla_due_time_from_the_type_and_breach_marked_once():
    mismatched()
    now = timezone.now()
    run(now=now)
    case = ExceptionCase.objects.get()
    assert case.due_at == now + timedelta(hours=24)
    later = now + timedelta(hours=25)
    counts = detection_run(scope=Scope(), now=later, rules=[rule_for("tracking_mismatch")])
    assert counts["tracking_mismatch"]["breached"] == 1
    case.refresh_from_db()
    assert case.breached_at == later
    detection_run(scope=Scope(), now=later + timedelta(minutes=5), rules=[rule_for("tracking_mismatch")])
    assert case.activities.filter(verb=ActivityVerb.BREACHED).count() == 1


def test_admin_sla_override_and_disabled_type():
    ExceptionTypeSetting.objects.create(type_code="tracking_mismatch", sla_minutes=30)
    mismatched()
    now = timezone.now()
    run(now=now)
    assert ExceptionCase.objects.get().due_at == now + timedelta(minutes=30)
    ExceptionTypeSetting.objects.filter(type_code="tracking_mismatch").update(is_enabled=False)
    mismatched()
    detection_run(scope=Scope())
    assert ExceptionCase.objects.filter(type_code="tracking_mismatch").count() == 1


def test_evidence_refreshed_each_pass_with_an_activity_only_when_the_problem_changed():
    pr = mismatched()
    first = timezone.now()
    run(now=first)
    run(now=first + timedelta(minutes=5))
    case = ExceptionCase.objects.get()
    assert case.last_detected_at == first + timedelta(minutes=5) and verbs(case) == ["opened"]
    set_tracking(pr, "1ZEEE555")
    run(now=first + timedelta(minutes=10))
    case.refresh_from_db()
    assert case.evidence["computed"]["portal_tracking"] == "1ZEEE555"
    assert verbs(case) == ["opened", "evidence_updated"]
    assert case.activities.get(verb="evidence_updated").data["previous"]["computed"]["portal_tracking"] == "1ZAAA111"


def test_a_sync_change_queues_one_incremental_pass_which_records_a_run(django_capture_on_commit_callbacks):
    pr = mismatched()
    with django_capture_on_commit_callbacks(execute=True):
        changes_notify(order_refs={pr.order_ref, ""})
    assert OrmQ.objects.count() == 1
    result = detect_incremental([pr.order_ref])
    assert result["types"]["tracking_mismatch"]["opened"] == 1 and result["orders"] == 1
    assert SyncRun.objects.get(job="detect_incremental").status == SyncRunStatus.SUCCEEDED


def test_command_and_schedule(capsys):
    from returnsync.registry import schedules_ensure_all

    mismatched()
    call_command("detect_exceptions", "--full")
    out = capsys.readouterr().out
    assert "tracking_mismatch" in out and "opened 1" in out
    schedules_ensure_all()
    assert Schedule.objects.filter(func="exceptions_app.tasks.detect_full", minutes=5).count() == 1


def test_a_concurrent_pass_that_opened_the_case_first_wins_without_error():
    from exceptions_app.detection import _cases_create

    mismatched()
    run()
    theirs = ExceptionCase.objects.get()
    now = timezone.now()
    duplicate = ExceptionCase(type_code=theirs.type_code, subject_kind=theirs.subject_kind,
                              subject_id=theirs.subject_id, subject_key=theirs.subject_key,
                              owner_role=theirs.owner_role, title="ours", opened_at=now, last_detected_at=now)
    other_pr = mismatched()
    other = ExceptionCase(type_code=theirs.type_code, subject_kind=theirs.subject_kind, subject_id=other_pr.pk,
                          subject_key=f"portal_return:{other_pr.pk}", owner_role=theirs.owner_role, title="new",
                          opened_at=now, last_detected_at=now)
    activities = []
    assert _cases_create(cases=[duplicate, other], now=now, activities=activities) == 1
    assert ExceptionCase.objects.filter(subject_key=theirs.subject_key).get().title == theirs.title
    assert ExceptionCase.objects.filter(subject_key=other.subject_key).exists()
    assert [a.exception_id for a in activities] == [other.pk]


def test_command_for_given_orders_and_refuses_no_scope(capsys):
    from django.core.management.base import CommandError

    a = mismatched()
    mismatched()  # another order, not in scope
    call_command("detect_exceptions", "--order", a.order_ref, "--json")
    assert '"opened": 1' in capsys.readouterr().out
    assert list(ExceptionCase.objects.values_list("order_ref", flat=True)) == [a.order_ref]
    with pytest.raises(CommandError):
        call_command("detect_exceptions")


def test_a_type_with_a_broken_threshold_fails_alone_and_the_run_says_so():
    ExceptionTypeSetting.objects.create(type_code="refund_lag", thresholds={"lag_hours": "three days"})
    mismatched()
    result = detect_full()
    assert result["types"]["tracking_mismatch"]["opened"] == 1
    assert "ValueError" in result["types"]["refund_lag"]["error"]
    run_row = SyncRun.objects.get(job="detect_full")
    assert run_row.status == SyncRunStatus.FAILED and run_row.error.startswith("refund_lag: ValueError")
