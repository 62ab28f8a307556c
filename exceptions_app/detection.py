"""The detection engine: rule findings → exception cases, set-based.

``detection_run`` asks every enabled rule what is wrong *now* (each rule is a few
queries returning only the faulty rows) and reconciles that with the cases on record,
per type, in one transaction:

- a finding with no active case opens one (``bulk_create``), or reopens the subject's
  last case when the engine itself had auto-resolved it; a case a person resolved or
  dismissed is not raised again for the same fingerprint (a new fingerprint is a new
  problem, so a new case);
- a finding with an active case refreshes its evidence and ``last_detected_at``
  (an ``evidence_updated`` activity only when the fingerprint changed);
- an active case in scope whose subject is no longer found is auto-resolved when the
  rule's ``clears`` agrees;
- the full pass also marks SLA breaches.

Every step writes ``ExceptionActivity`` rows in bulk (one prepared INSERT); no per-row ``save()``.
A concurrent pass racing on the one-active-case constraint is absorbed (the other pass's
case stands).
"""
from __future__ import annotations

import logging
from collections import defaultdict
from contextlib import nullcontext
from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime

from django.db import IntegrityError, connection, models, transaction
from django.db.models import F
from django.utils import timezone

from exceptions_app.choices import ActivityVerb, ExceptionStatus
from exceptions_app.models import ExceptionActivity, ExceptionCase
from exceptions_app.rules import rules as configured_rules
from exceptions_app.rules.base import Finding, Rule, Scope

logger = logging.getLogger(__name__)

CHUNK = 500
ACTIVE = ExceptionStatus.active()
HUMAN_CLOSED = (ExceptionStatus.RESOLVED, ExceptionStatus.DISMISSED)
COUNT_KEYS = ("found", "opened", "refreshed", "reopened", "auto_resolved", "breached", "suppressed")
# Columns a pass reads of an active case (never the whole row).
CASE_COLUMNS = ("id", "subject_key", "status", "fingerprint", "evidence", "title", "amount", "currency",
                "order_ref", "write_back_id", "inbound_event_id")
# Finding anchors copied onto the case, with the column's length.
ANCHORS = {"order_ref": 64, "return_ref": 64, "portal_ref": 64, "tracking_numbers": 250,
           "buyer_postal_code": 20, "system": 20}
LINKS = ("connection_id", "marketplace_return_id", "portal_return_id", "write_back_id", "inbound_event_id")


def _rows_insert(model: type[models.Model], objs: Sequence[models.Model]) -> None:
    """INSERT many new rows (``COPY`` on PostgreSQL, one prepared statement stepped per row
    on SQLite), values adapted once per column type: ``bulk_create`` compiles SQL per value,
    which was most of a pass that opens thousands of cases. Primary keys are not read back."""
    if not objs:
        return
    ops = connection.ops
    fields = [f for f in model._meta.concrete_fields if not f.primary_key]
    adapters = []
    for f in fields:
        if isinstance(f, models.JSONField):
            adapters.append(lambda v, f=f: ops.adapt_json_value(v, f.encoder))
        elif isinstance(f, models.DateTimeField):
            adapters.append(ops.adapt_datetimefield_value)
        elif isinstance(f, models.DecimalField):
            adapters.append(lambda v, f=f: ops.adapt_decimalfield_value(v, f.max_digits, f.decimal_places))
        else:
            adapters.append(None)
    names = [f.attname for f in fields]
    now = timezone.now()
    for obj in objs:  # what save() would have filled in
        for f in fields:
            if getattr(f, "auto_now", False) or (getattr(f, "auto_now_add", False) and getattr(obj, f.attname) is None):
                setattr(obj, f.attname, now)
    rows = [
        tuple(value if adapt is None or value is None else adapt(value)
              for value, adapt in zip((getattr(obj, name) for name in names), adapters, strict=True))
        for obj in objs
    ]
    table = ops.quote_name(model._meta.db_table)
    columns = ", ".join(ops.quote_name(f.column) for f in fields)
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":  # COPY: rows streamed, formatted in C
            with connection.wrap_database_errors, cursor.cursor.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                for row in rows:
                    copy.write_row(row)
            return
        sql = f"INSERT INTO {table} ({columns}) VALUES ({', '.join(['%s'] * len(fields))})"
        for chunk in _chunks(rows, 2000):
            cursor.executemany(sql, chunk)


def _chunks(items: Sequence, size: int = CHUNK) -> Iterator[Sequence]:
    for start in range(0, len(items), size):
        yield items[start:start + size]


def _zero() -> dict[str, int]:
    return dict.fromkeys(COUNT_KEYS, 0)


def detection_run(*, scope: Scope, now: datetime | None = None, rules: Iterable[Rule] | None = None
                  ) -> dict[str, dict[str, int]]:
    """One detection pass over ``scope`` (full, or the given TikTok orders). Returns counts per type."""
    now = now or timezone.now()
    selected = [rule for rule in (configured_rules() if rules is None else rules) if rule.enabled]
    counts: dict[str, dict[str, int]] = {}
    # The full pass commits type by type (short write locks); an incremental pass is small:
    # one transaction, one commit.
    with transaction.atomic() if not scope.is_full else nullcontext():
        if not scope.is_full and connection.vendor == "postgresql":
            # A few hundred index probes beat a scan of the whole table, but with the default
            # random_page_cost (4, spinning disks) the planner guesses a parallel scan is
            # cheaper; the canonical tables are hot in cache. This transaction only.
            with connection.cursor() as cursor:
                cursor.execute("SET LOCAL random_page_cost = 1.1")
        for rule in selected:
            try:
                with transaction.atomic():
                    counts[rule.code] = _rule_apply(rule=rule, scope=scope, now=now)
            except Exception as error:  # noqa: BLE001 — one broken type (say a bad threshold) must not stop the others
                logger.exception("detection of %s failed", rule.code)
                counts[rule.code] = {**_zero(), "error": f"{type(error).__name__}: {error}"[:500]}
    if scope.is_full:
        for code, breached in cases_mark_breached(now=now).items():
            counts.setdefault(code, _zero())["breached"] = breached
    return counts


def counts_total(counts: dict[str, dict[str, int]]) -> dict[str, int]:
    """The per-type counts summed (what a SyncRun row shows at a glance)."""
    total = _zero()
    for per_type in counts.values():
        for key, value in per_type.items():
            if isinstance(value, int):
                total[key] = total.get(key, 0) + value
    return total


def counts_errors(counts: dict[str, dict]) -> dict[str, str]:
    """The types whose detection failed in this pass, with the error."""
    return {code: per_type["error"] for code, per_type in counts.items() if per_type.get("error")}


# --- one rule ------------------------------------------------------------------------------


def _rule_apply(*, rule: Rule, scope: Scope, now: datetime) -> dict[str, int]:
    counts = _zero()
    findings: dict[str, Finding] = {}
    for finding in rule.detect(scope=scope, now=now):
        findings[finding.subject_key] = finding
    counts["found"] = len(findings)

    active = _active_cases(rule=rule, scope=scope, keys=list(findings))
    activities: list[ExceptionActivity] = []

    # Found and already open: refresh.
    counts["refreshed"] = _cases_refresh(
        cases=[case for key, case in active.items() if key in findings], findings=findings, now=now,
        activities=activities,
    )

    # Found, nothing active: open, reopen, or leave closed (a person closed this very problem).
    new_keys = [key for key in findings if key not in active]
    if new_keys:
        opened, reopened, suppressed = _cases_open(rule=rule, findings=[findings[k] for k in new_keys], now=now,
                                                   activities=activities)
        counts.update(opened=opened, reopened=reopened, suppressed=suppressed)

    # Active, in scope, no longer found: the condition cleared.
    gone = [case for key, case in active.items() if key not in findings and rule.clears(case=case, now=now)]
    counts["auto_resolved"] = _cases_auto_resolve(cases=gone, now=now, activities=activities)

    _rows_insert(ExceptionActivity, activities)
    return counts


def _active_cases(*, rule: Rule, scope: Scope, keys: list[str]) -> dict[str, ExceptionCase]:
    """Active cases of the rule's type that this pass judges: every one (full pass), or those
    of the scope's orders plus those of the subjects found (incremental)."""
    base = ExceptionCase.objects.filter(type_code=rule.code, status__in=ACTIVE).only(*CASE_COLUMNS)
    if scope.is_full:
        return {case.subject_key: case for case in base.iterator(chunk_size=2000)}
    cases: dict[str, ExceptionCase] = {
        case.subject_key: case for case in base.filter(order_ref__in=sorted(scope.order_refs))
    }
    missing = [key for key in keys if key not in cases]
    for chunk in _chunks(missing):
        cases.update({case.subject_key: case for case in base.filter(subject_key__in=chunk)})
    return cases


def _case_values(finding: Finding) -> dict:
    """What a finding sets on its case (besides status and timing)."""
    values = {name: (getattr(finding, name) or "")[:length] for name, length in ANCHORS.items()}
    values.update({name: getattr(finding, name) for name in LINKS})
    values.update(title=finding.title[:300], evidence=finding.evidence, fingerprint=finding.fingerprint,
                  amount=finding.amount, currency=finding.currency or "")
    return values


def _cases_refresh(*, cases: list[ExceptionCase], findings: dict[str, Finding], now: datetime,
                   activities: list[ExceptionActivity]) -> int:
    unchanged: list[int] = []
    changed: list[ExceptionCase] = []
    for case in cases:
        finding = findings[case.subject_key]
        values = _case_values(finding)
        if (case.evidence == values["evidence"] and case.fingerprint == values["fingerprint"]
                and case.title == values["title"] and case.amount == values["amount"]):
            unchanged.append(case.pk)
            continue
        if case.fingerprint != values["fingerprint"]:
            activities.append(ExceptionActivity(
                exception_id=case.pk, verb=ActivityVerb.EVIDENCE_UPDATED, from_status=case.status,
                to_status=case.status, note="What the systems say changed.",
                data={"previous": case.evidence, "current": values["evidence"]}, created_at=now,
            ))
        for name, value in values.items():
            setattr(case, name, value)
        case.last_detected_at = case.updated_at = now
        changed.append(case)
    for chunk in _chunks(unchanged, 900):
        ExceptionCase.objects.filter(pk__in=chunk).update(last_detected_at=now)
    if changed:
        fields = [*ANCHORS, *LINKS, "title", "evidence", "fingerprint", "amount", "currency", "last_detected_at",
                  "updated_at"]
        ExceptionCase.objects.bulk_update(changed, fields, batch_size=CHUNK)
    return len(unchanged) + len(changed)


def _closed_history(*, code: str, keys: list[str]) -> tuple[dict[str, dict], dict[str, set[str]]]:
    """For subjects with no active case: the latest closed case, and the fingerprints people closed."""
    latest: dict[str, dict] = {}
    human: dict[str, set[str]] = defaultdict(set)
    for chunk in _chunks(keys):
        rows = (ExceptionCase.objects.filter(type_code=code, subject_key__in=chunk)
                .exclude(status__in=ACTIVE)
                .order_by("subject_key", F("closed_at").desc(nulls_last=True), "-id")
                .values("id", "subject_key", "status", "fingerprint", "reopen_count"))
        for row in rows:
            latest.setdefault(row["subject_key"], row)
            if row["status"] in HUMAN_CLOSED:
                human[row["subject_key"]].add(row["fingerprint"])
    return latest, human


def _cases_open(*, rule: Rule, findings: list[Finding], now: datetime,
                activities: list[ExceptionActivity]) -> tuple[int, int, int]:
    latest, human = _closed_history(code=rule.code, keys=[f.subject_key for f in findings])
    due_at = now + rule.effective_sla
    to_create: list[ExceptionCase] = []
    to_reopen: list[ExceptionCase] = []
    suppressed = 0
    for finding in findings:
        key = finding.subject_key
        if finding.fingerprint in human.get(key, ()):
            suppressed += 1
            continue
        values = _case_values(finding)
        last = latest.get(key)
        if last is not None and last["status"] == ExceptionStatus.AUTO_RESOLVED:
            case = ExceptionCase(pk=last["id"], status=ExceptionStatus.OPEN, reopen_count=last["reopen_count"] + 1,
                                 closed_at=None, closed_by=None, assignee=None, claimed_at=None, breached_at=None,
                                 last_detected_at=now, updated_at=now, due_at=due_at, **values)
            to_reopen.append(case)
            continue
        to_create.append(ExceptionCase(
            type_code=rule.code, subject_kind=finding.subject_kind, subject_id=finding.subject_id, subject_key=key,
            owner_role=rule.owner, severity=rule.severity, status=ExceptionStatus.OPEN, opened_at=now,
            last_detected_at=now, due_at=due_at, **values,
        ))
    reopened = _cases_reopen(cases=to_reopen, now=now, activities=activities)
    created = _cases_create(cases=to_create, now=now, activities=activities)
    return created, reopened, suppressed


def _cases_create(*, cases: list[ExceptionCase], now: datetime, activities: list[ExceptionActivity]) -> int:
    if not cases:
        return 0
    try:
        with transaction.atomic():
            _rows_insert(ExceptionCase, cases)
        # The ids: this pass's own cases are the active ones of the type opened at ``now``.
        code = cases[0].type_code
        ids = dict(ExceptionCase.objects.filter(type_code=code, status__in=ACTIVE, opened_at=now)
                   .values_list("subject_key", "id"))
        for case in cases:
            case.pk = ids[case.subject_key]
        created = cases
    except IntegrityError:
        # A concurrent pass opened some of these first: keep its cases, add the rest one by one.
        created = []
        for case in cases:
            try:
                with transaction.atomic():
                    case.save(force_insert=True)
                created.append(case)
            except IntegrityError:
                logger.info("exception %s already active (concurrent pass)", case.subject_key)
                case.pk = None
    activities.extend(
        ExceptionActivity(exception_id=case.pk, verb=ActivityVerb.OPENED, to_status=ExceptionStatus.OPEN,
                          note=case.title, created_at=now)
        for case in created
    )
    return len(created)


def _cases_reopen(*, cases: list[ExceptionCase], now: datetime, activities: list[ExceptionActivity]) -> int:
    if not cases:
        return 0
    fields = ["status", "reopen_count", "closed_at", "closed_by", "assignee", "claimed_at", "breached_at",
              "last_detected_at", "updated_at", "due_at", *ANCHORS, *LINKS, "title", "evidence", "fingerprint", "amount", "currency"]
    reopened: list[ExceptionCase] = []
    try:
        with transaction.atomic():
            ExceptionCase.objects.bulk_update(cases, fields, batch_size=CHUNK)
        reopened = cases
    except IntegrityError:
        for case in cases:
            try:
                with transaction.atomic():
                    ExceptionCase.objects.bulk_update([case], fields)
                reopened.append(case)
            except IntegrityError:
                logger.info("exception %s already active (concurrent pass)", case.subject_key)
    activities.extend(
        ExceptionActivity(exception_id=case.pk, verb=ActivityVerb.REOPENED, from_status=ExceptionStatus.AUTO_RESOLVED,
                          to_status=ExceptionStatus.OPEN, note="The condition came back.",
                          data={"evidence": case.evidence}, created_at=now)
        for case in reopened
    )
    return len(reopened)


def _cases_auto_resolve(*, cases: list[ExceptionCase], now: datetime, activities: list[ExceptionActivity]) -> int:
    done = 0
    by_id = {case.pk: case for case in cases}
    for chunk in _chunks(list(by_id), 900):
        # Only what is still active (a person may have closed it meanwhile).
        ids = list(ExceptionCase.objects.filter(pk__in=chunk, status__in=ACTIVE).values_list("id", flat=True))
        ExceptionCase.objects.filter(pk__in=ids, status__in=ACTIVE).update(
            status=ExceptionStatus.AUTO_RESOLVED, closed_at=now, updated_at=now)
        for pk in ids:
            case = by_id[pk]
            activities.append(ExceptionActivity(
                exception_id=pk, verb=ActivityVerb.AUTO_RESOLVED, from_status=case.status,
                to_status=ExceptionStatus.AUTO_RESOLVED, note="A later pass found the condition cleared.",
                data={"evidence": case.evidence}, created_at=now,
            ))
        done += len(ids)
    return done


# --- SLA ---------------------------------------------------------------------------------


def cases_mark_breached(*, now: datetime | None = None) -> dict[str, int]:
    """Stamp ``breached_at`` on active cases past their due time (once each); counts per type."""
    now = now or timezone.now()
    counts: dict[str, int] = defaultdict(int)
    with transaction.atomic():
        rows = list(ExceptionCase.objects.filter(status__in=ACTIVE, due_at__lte=now, breached_at__isnull=True)
                    .values_list("id", "type_code", "status"))
        activities = []
        for chunk in _chunks(rows, 900):
            ExceptionCase.objects.filter(pk__in=[pk for pk, _, _ in chunk], breached_at__isnull=True).update(
                breached_at=now, updated_at=now)
            for pk, code, status in chunk:
                counts[code] += 1
                activities.append(ExceptionActivity(
                    exception_id=pk, verb=ActivityVerb.BREACHED, from_status=status, to_status=status,
                    note="Past its SLA due time.", created_at=now,
                ))
        _rows_insert(ExceptionActivity, activities)
    return dict(counts)
