"""Writes on exceptions: the lifecycle a person drives, and the per-type settings.

Every step is one conditional UPDATE (so two people acting at once cannot both win)
plus one ``ExceptionActivity`` row saying who, when, from and to. A user may act only on
exceptions their role owns (Admins on all); anything else is a ``PermissionDenied``
with a message saying whose it is. A step that is not possible in the case's current
state (already closed, claimed by someone else, nothing to retry) raises
``ExceptionActionError`` with a message to show as is.

Opening, auto-resolving and reopening belong to the detection pass
(``exceptions_app.detection``), not here.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth.models import AbstractBaseUser
from django.core.exceptions import PermissionDenied
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from exceptions_app.choices import ActivityVerb, ExceptionStatus, ResolutionCode
from exceptions_app.models import ExceptionActivity, ExceptionCase, ExceptionTypeSetting
from exceptions_app.rules import REGISTRY
from exceptions_app.rules.base import SLA_MAX_MINUTES, threshold_limits
from returnsync.roles import Role, has_any_role
from returnsync.services import NotRetryable, inbound_event_retry, write_back_retry

# Types whose resolution must say how much was actually refunded (finance types the
# amount into Seller Center by hand; the record has to say what went out).
AMOUNT_REQUIRED_TYPES: frozenset[str] = frozenset({"partial_refund"})


class ExceptionActionError(ValueError):
    """The step is not possible in the case's current state; the message says why."""


@dataclass(frozen=True)
class ClaimResult:
    won: bool
    exception: ExceptionCase
    holder: Any  # the user holding the case after the attempt (None if nobody)
    message: str


@dataclass(frozen=True)
class BulkOutcome:
    exception_id: int
    ok: bool
    message: str


# --- Helpers ---------------------------------------------------------------------------------


def _name(user: AbstractBaseUser | None) -> str:
    if user is None:
        return "nobody"
    return user.get_full_name() or user.get_username()


def _is_admin(user: AbstractBaseUser) -> bool:
    return has_any_role(user, frozenset({Role.ADMIN}))


def exception_may_act(*, exception: ExceptionCase, user: AbstractBaseUser) -> bool:
    """True when ``user`` holds the role owning the exception (or is Admin)."""
    return bool(user and user.is_authenticated) and has_any_role(user, frozenset({Role(exception.owner_role)}))


def _get_for_actor(*, exception_id: int, user: AbstractBaseUser) -> ExceptionCase:
    try:
        case = ExceptionCase.objects.select_related("assignee").get(pk=exception_id)
    except ExceptionCase.DoesNotExist:
        raise ExceptionActionError(f"Exception {exception_id} does not exist.") from None
    if not exception_may_act(exception=case, user=user):
        raise PermissionDenied(
            f"Exception {case.pk} belongs to {Role(case.owner_role).label}; only that role or an admin may act on it."
        )
    return case


def _ensure_active(case: ExceptionCase) -> None:
    if not case.is_active:
        raise ExceptionActionError(f"Exception {case.pk} is already {case.get_status_display().lower()}.")


def _activity(case: ExceptionCase, *, verb: str, user: AbstractBaseUser, from_status: str, to_status: str,
              from_assignee=None, to_assignee=None, note: str = "", data: dict | None = None) -> ExceptionActivity:
    return ExceptionActivity.objects.create(
        exception=case, verb=verb, actor=user, from_status=from_status, to_status=to_status,
        from_assignee=from_assignee, to_assignee=to_assignee, note=note, data=data or {},
    )


def _refused_because_held(case: ExceptionCase, user: AbstractBaseUser) -> ExceptionActionError:
    case.refresh_from_db()
    if not case.is_active:
        return ExceptionActionError(f"Exception {case.pk} is already {case.get_status_display().lower()}.")
    return ExceptionActionError(f"Exception {case.pk} is claimed by {_name(case.assignee)}.")


# --- Lifecycle -------------------------------------------------------------------------------


def exception_claim(*, exception_id: int, user: AbstractBaseUser) -> ClaimResult:
    """Take an open, unassigned exception. One conditional UPDATE: of many people claiming
    at once exactly one wins; the others are told who did."""
    case = _get_for_actor(exception_id=exception_id, user=user)
    now = timezone.now()
    with transaction.atomic():
        won = ExceptionCase.objects.filter(
            pk=case.pk, status=ExceptionStatus.OPEN, assignee__isnull=True
        ).update(status=ExceptionStatus.CLAIMED, assignee=user, claimed_at=now, updated_at=now)
        if won:
            case.refresh_from_db()
            _activity(case, verb=ActivityVerb.CLAIMED, user=user, from_status=ExceptionStatus.OPEN,
                      to_status=ExceptionStatus.CLAIMED, to_assignee=user)
            return ClaimResult(True, case, user, f"You claimed exception {case.pk}.")
    case = ExceptionCase.objects.select_related("assignee").get(pk=case.pk)
    if case.assignee_id == user.pk and case.status == ExceptionStatus.CLAIMED:
        return ClaimResult(True, case, user, f"Exception {case.pk} is already yours.")
    if not case.is_active:
        message = f"Exception {case.pk} is already {case.get_status_display().lower()}."
    else:
        message = f"{_name(case.assignee)} claimed exception {case.pk} first."
    return ClaimResult(False, case, case.assignee, message)


def exception_release(*, exception_id: int, user: AbstractBaseUser) -> ExceptionCase:
    """Give a claimed exception back to the queue (its assignee, or an admin)."""
    case = _get_for_actor(exception_id=exception_id, user=user)
    _ensure_active(case)
    if case.status != ExceptionStatus.CLAIMED:
        raise ExceptionActionError(f"Exception {case.pk} is not claimed.")
    if case.assignee_id != user.pk and not _is_admin(user):
        raise ExceptionActionError(f"Exception {case.pk} is claimed by {_name(case.assignee)}; only they or an "
                                   f"admin may release it.")
    previous = case.assignee
    with transaction.atomic():
        done = ExceptionCase.objects.filter(
            pk=case.pk, status=ExceptionStatus.CLAIMED, assignee=previous
        ).update(status=ExceptionStatus.OPEN, assignee=None, claimed_at=None, updated_at=timezone.now())
        if not done:
            raise _refused_because_held(case, user)
        case.refresh_from_db()
        _activity(case, verb=ActivityVerb.RELEASED, user=user, from_status=ExceptionStatus.CLAIMED,
                  to_status=ExceptionStatus.OPEN, from_assignee=previous)
    return case


def exception_reassign(*, exception_id: int, user: AbstractBaseUser, to_user: AbstractBaseUser | None) -> ExceptionCase:
    """Hand an active exception to someone else holding the owning role. An open case may be
    assigned by anyone of that role; a claimed one is handed on only by its assignee or an
    admin (nobody takes over a colleague's claim). The role is checked first, so a person
    who may not act on the case learns nothing about it."""
    case = _get_for_actor(exception_id=exception_id, user=user)
    _ensure_active(case)
    held_by_other = case.assignee_id is not None and case.assignee_id != user.pk
    if held_by_other and not _is_admin(user):
        raise ExceptionActionError(f"Exception {case.pk} is claimed by {_name(case.assignee)}; only they or an "
                                   f"admin may hand it on.")
    if to_user is None or not to_user.is_active or not exception_may_act(exception=case, user=to_user):
        raise ExceptionActionError(f"{_name(to_user)} does not hold the {Role(case.owner_role).label} role.")
    previous, previous_status = case.assignee, case.status
    now = timezone.now()
    with transaction.atomic():
        done = ExceptionCase.objects.filter(
            pk=case.pk, status=previous_status, assignee=previous
        ).update(status=ExceptionStatus.CLAIMED, assignee=to_user, claimed_at=now, updated_at=now)
        if not done:
            raise ExceptionActionError(f"Exception {case.pk} changed meanwhile; reload and try again.")
        case.refresh_from_db()
        _activity(case, verb=ActivityVerb.REASSIGNED, user=user, from_status=previous_status,
                  to_status=ExceptionStatus.CLAIMED, from_assignee=previous, to_assignee=to_user)
    return case


def _close(*, exception_id: int, user: AbstractBaseUser, to_status: str, verb: str, code: str, note: str,
           resolved_amount: Decimal | None = None) -> ExceptionCase:
    case = _get_for_actor(exception_id=exception_id, user=user)
    _ensure_active(case)
    held_by_other = case.assignee_id is not None and case.assignee_id != user.pk
    if held_by_other and not _is_admin(user):
        raise ExceptionActionError(f"Exception {case.pk} is claimed by {_name(case.assignee)}.")
    previous, previous_status = case.assignee, case.status
    now = timezone.now()
    with transaction.atomic():
        done = ExceptionCase.objects.filter(pk=case.pk, status=previous_status, assignee=previous).update(
            status=to_status, closed_at=now, closed_by=user, resolution_code=code, resolution_note=note,
            resolved_amount=resolved_amount, updated_at=now,
        )
        if not done:
            raise _refused_because_held(case, user)
        case.refresh_from_db()
        data = {"resolved_amount": str(resolved_amount)} if resolved_amount is not None else {}
        if code:
            data["resolution_code"] = code
        _activity(case, verb=verb, user=user, from_status=previous_status, to_status=to_status,
                  from_assignee=previous, to_assignee=previous, note=note, data=data)
    return case


def exception_resolve(*, exception_id: int, user: AbstractBaseUser, code: str, note: str,
                      resolved_amount: Decimal | None = None, confirm_over: bool = False) -> ExceptionCase:
    """Close an exception as handled, with a resolution code and a note. A partial refund
    refunded by hand records the amount actually refunded; an amount above what remains to
    refund (TikTok may have paid part already) is recorded only when ``confirm_over``."""
    if code not in ResolutionCode.values:
        raise ExceptionActionError("Choose a resolution code.")
    note = (note or "").strip()
    if not note:
        raise ExceptionActionError("Write a note saying what you did.")
    if resolved_amount is not None:
        try:
            resolved_amount = Decimal(resolved_amount).quantize(Decimal("0.01"))
        except (InvalidOperation, TypeError, ValueError):
            raise ExceptionActionError("The refunded amount must be a number.") from None
        if resolved_amount < 0:
            raise ExceptionActionError("The refunded amount cannot be negative.")
    case = ExceptionCase.objects.filter(pk=exception_id).only(
        "type_code", "evidence", "currency", "order_ref", "subject_key").first()
    rule_class = REGISTRY.get(case.type_code) if case is not None else None
    if rule_class is not None and rule_class.closes_only_when_cleared:
        from exceptions_app.rules import rule_for

        if rule_for(case.type_code).still_holds(case=case, now=timezone.now()) is not None:
            raise ExceptionActionError(f"Not resolved: {rule_class.still_holds_message}")
    if case is not None and case.type_code in AMOUNT_REQUIRED_TYPES:
        if code == ResolutionCode.REFUNDED_MANUALLY and resolved_amount is None:
            raise ExceptionActionError("Enter the amount actually refunded in Seller Center.")
        remaining = _remaining(case)
        if resolved_amount is not None and remaining is not None and resolved_amount > remaining \
                and code == ResolutionCode.REFUNDED_MANUALLY and not confirm_over:
            raise ExceptionActionError(
                f"{resolved_amount} {case.currency} is more than the {remaining} {case.currency} that remains to "
                f"refund: paying it would refund the buyer twice. Tick \"record it although it is more\" only if "
                f"that much really went out.")
    return _close(exception_id=exception_id, user=user, to_status=ExceptionStatus.RESOLVED,
                  verb=ActivityVerb.RESOLVED, code=code, note=note, resolved_amount=resolved_amount)


def _remaining(case: ExceptionCase) -> Decimal | None:
    """What remains to refund on a partial-refund case, as its last detection computed it."""
    computed = (case.evidence or {}).get("computed") if isinstance(case.evidence, dict) else None
    try:
        return Decimal(str(computed["remaining"])) if computed and computed.get("remaining") is not None else None
    except (InvalidOperation, TypeError, ValueError):
        return None


def exception_offer_partial_refund(*, exception_id: int, user: AbstractBaseUser) -> ExceptionCase:
    """Offer the buyer what remains to refund as TikTok's partial refund (the buyer keeps the
    item and must accept). Only the owning role, on a case that is not someone else's, where
    the marketplace takes offers now and the amount is inside its caps; the same offer twice
    is one (its key carries the amount)."""
    from returnsync import refund_gate, registry

    case = _get_for_actor(exception_id=exception_id, user=user)
    _ensure_active(case)
    if case.assignee_id is not None and case.assignee_id != user.pk and not _is_admin(user):
        raise ExceptionActionError(f"Exception {case.pk} is claimed by {_name(case.assignee)}.")
    portal = case.portal_return
    if case.type_code != "partial_refund" or portal is None or portal.marketplace_return_id is None:
        raise ExceptionActionError("Only a partial refund on a linked TikTok return can be offered.")
    settlement = refund_gate.settlement_for(portal_return=portal)
    if settlement is None or settlement.action != refund_gate.REFUND or settlement.remaining <= 0:
        raise ExceptionActionError(f"Nothing to offer: {settlement.describe() if settlement else 'not partial'}.")
    mreturn = portal.marketplace_return
    ops = registry.marketplace_for(mreturn.connection)
    refusal = ops.partial_refund_offer_refusal(marketplace_return=mreturn, amount=settlement.remaining)
    if refusal:
        raise ExceptionActionError(refusal)
    with transaction.atomic():
        write_back = ops.partial_refund_offer(marketplace_return=mreturn, amount=settlement.remaining,
                                              currency=settlement.currency, actor=user)
        _activity(case, verb=ActivityVerb.OFFERED, user=user, from_status=case.status, to_status=case.status,
                  note=f"Offered {settlement.remaining} {settlement.currency} as a partial refund on TikTok.",
                  data={"amount": str(settlement.remaining), "write_back_id": write_back.pk})
    return case


def exception_dismiss(*, exception_id: int, user: AbstractBaseUser, reason: str) -> ExceptionCase:
    """Close an exception as not a problem, saying why."""
    reason = (reason or "").strip()
    if not reason:
        raise ExceptionActionError("Say why the exception is dismissed.")
    return _close(exception_id=exception_id, user=user, to_status=ExceptionStatus.DISMISSED,
                  verb=ActivityVerb.DISMISSED, code="", note=reason)


def exception_comment(*, exception_id: int, user: AbstractBaseUser, note: str) -> ExceptionActivity:
    note = (note or "").strip()
    if not note:
        raise ExceptionActionError("The comment is empty.")
    case = _get_for_actor(exception_id=exception_id, user=user)
    return _activity(case, verb=ActivityVerb.COMMENTED, user=user, from_status=case.status,
                     to_status=case.status, note=note)


def exception_retry(*, exception_id: int, user: AbstractBaseUser) -> ExceptionCase:
    """Re-run the failed step the exception links (a dead inbound event or a failed
    write-back) through ``returnsync.services``; a step that succeeded is never re-run."""
    case = _get_for_actor(exception_id=exception_id, user=user)
    _ensure_active(case)
    if case.write_back_id is None and case.inbound_event_id is None:
        raise ExceptionActionError(f"Exception {case.pk} links no failed step to retry.")
    with transaction.atomic():
        try:
            if case.write_back_id is not None:
                write_back_retry(write_back_id=case.write_back_id)
                data = {"write_back_id": case.write_back_id}
                note = f"Write-back {case.write_back_id} queued again."
            else:
                inbound_event_retry(event_id=case.inbound_event_id)
                data = {"inbound_event_id": case.inbound_event_id}
                note = f"Inbound event {case.inbound_event_id} queued for processing again."
        except NotRetryable as error:
            raise ExceptionActionError(f"Nothing to retry: {error}.") from None
        _activity(case, verb=ActivityVerb.RETRIED, user=user, from_status=case.status, to_status=case.status,
                  note=note, data=data)
    return case


# Cases whose fix is a step on the other system, taken from the case (operations).
MIRROR_TYPES = frozenset({"portal_bypass"})
RESEND_TYPES = frozenset({"status_drift"})


def _for_step(*, exception_id: int, user: AbstractBaseUser, types: frozenset[str]) -> ExceptionCase:
    case = _get_for_actor(exception_id=exception_id, user=user)
    _ensure_active(case)
    if case.type_code not in types or case.marketplace_return is None:
        raise ExceptionActionError(f"Exception {case.pk} is not a {' or '.join(sorted(types))} case on a TikTok return.")
    if case.assignee_id is not None and case.assignee_id != user.pk and not _is_admin(user):
        raise ExceptionActionError(f"Exception {case.pk} is claimed by {_name(case.assignee)}.")
    return case


def exception_mirror_now(*, exception_id: int, user: AbstractBaseUser) -> str:
    """Create the missing portal record from a portal-bypass case (retried if it failed)."""
    from returnsync.services import ActionRefused, portal_mirror_now

    case = _for_step(exception_id=exception_id, user=user, types=MIRROR_TYPES)
    try:
        message = portal_mirror_now(marketplace_return=case.marketplace_return, user=user)
    except ActionRefused as refused:
        raise ExceptionActionError(str(refused)) from None
    _activity(case, verb=ActivityVerb.RETRIED, user=user, from_status=case.status, to_status=case.status,
              note=message)
    return message


def exception_resend_receipt(*, exception_id: int, user: AbstractBaseUser) -> str:
    """Send TikTok the received-package decision again from a status-drift case."""
    from returnsync.services import ActionRefused, receipt_resend

    case = _for_step(exception_id=exception_id, user=user, types=RESEND_TYPES)
    try:
        write_back = receipt_resend(marketplace_return=case.marketplace_return, user=user)
    except ActionRefused as refused:
        raise ExceptionActionError(str(refused)) from None
    message = f"Receipt sent to TikTok again (write-back {write_back.pk}); the case closes when TikTok records it."
    _activity(case, verb=ActivityVerb.RETRIED, user=user, from_status=case.status, to_status=case.status,
              note=message, data={"write_back_id": write_back.pk})
    return message


# --- Bulk ------------------------------------------------------------------------------------


def _bulk(exception_ids: Iterable[int], run: Callable[[int], str]) -> list[BulkOutcome]:
    outcomes = []
    for pk in dict.fromkeys(int(i) for i in exception_ids):
        try:
            outcomes.append(BulkOutcome(pk, True, run(pk)))
        except (PermissionDenied, ExceptionActionError) as error:
            outcomes.append(BulkOutcome(pk, False, str(error)))
    return outcomes


def exception_bulk_claim(*, exception_ids: Iterable[int], user: AbstractBaseUser) -> list[BulkOutcome]:
    def run(pk: int) -> str:
        result = exception_claim(exception_id=pk, user=user)
        if not result.won:
            raise ExceptionActionError(result.message)
        return result.message

    return _bulk(exception_ids, run)


def exception_bulk_release(*, exception_ids: Iterable[int], user: AbstractBaseUser) -> list[BulkOutcome]:
    def run(pk: int) -> str:
        exception_release(exception_id=pk, user=user)
        return f"Released exception {pk}."

    return _bulk(exception_ids, run)


def exception_bulk_retry(*, exception_ids: Iterable[int], user: AbstractBaseUser) -> list[BulkOutcome]:
    def run(pk: int) -> str:
        exception_retry(exception_id=pk, user=user)
        return f"Exception {pk}: the failed step is queued again."

    return _bulk(exception_ids, run)


def exception_bulk_mirror(*, exception_ids: Iterable[int], user: AbstractBaseUser) -> list[BulkOutcome]:
    def run(pk: int) -> str:
        return f"Exception {pk}: {exception_mirror_now(exception_id=pk, user=user)}"

    return _bulk(exception_ids, run)


def exception_bulk_resolve(*, exception_ids: Iterable[int], user: AbstractBaseUser, code: str, note: str) -> list[BulkOutcome]:
    def run(pk: int) -> str:
        exception_resolve(exception_id=pk, user=user, code=code, note=note)
        return f"Resolved exception {pk}."

    return _bulk(exception_ids, run)


# --- Settings --------------------------------------------------------------------------------




def _coerce_threshold(name: str, default: Any, value: Any, bounds: tuple[Any, Any] | None = None) -> Any:
    """A threshold value of the same type as its default in code, within ``bounds``."""
    if isinstance(value, str):
        value = value.strip()
    coerced = _coerce_type(name, default, value)
    if bounds is not None and not isinstance(coerced, bool):
        low, high = bounds
        try:
            number = Decimal(str(coerced))
        except InvalidOperation:
            return coerced  # a text threshold
        if not Decimal(str(low)) <= number <= Decimal(str(high)):
            raise ExceptionActionError(f"{name}: {str(value)[:30]!r} is out of range: choose from {low} to {high}.")
    return coerced


def _coerce_type(name: str, default: Any, value: Any) -> Any:
    if isinstance(value, str) and len(value) > 30:
        raise ExceptionActionError(f"{name}: {value[:30]!r}… is not a valid value (too long).")
    try:
        if isinstance(default, bool):
            if isinstance(value, bool):
                return value
            if str(value).lower() in ("true", "1", "yes", "on"):
                return True
            if str(value).lower() in ("false", "0", "no", "off", ""):
                return False
            raise ValueError
        if isinstance(default, int):
            number = int(str(value))
            if number < 0:
                raise ValueError
            return number
        if isinstance(default, float):
            number = float(value)
            if number < 0:
                raise ValueError
            return number
        if isinstance(default, (str, Decimal)):
            try:
                Decimal(str(default))
            except InvalidOperation:
                return str(value)  # a text threshold
            number = Decimal(str(value))
            if not number.is_finite() or number < 0:
                raise ValueError
            return str(number)
    except (ValueError, TypeError, InvalidOperation):
        raise ExceptionActionError(f"{name}: {value!r} is not a valid value (expected something like "
                                   f"{default!r}).") from None
    return value


def exception_settings_update(*, type_code: str, user: AbstractBaseUser, sla_minutes: int | None = None,
                              thresholds: dict[str, Any] | None = None,
                              is_enabled: bool = True, reason: str = "") -> ExceptionTypeSetting | None:
    """Store an admin's overrides for one exception type (empty = the default in code).
    Nothing is written when nothing changes (no empty version in the change history)."""
    from returnsync.history import record_as

    if not _is_admin(user):
        raise PermissionDenied("Only an admin may change exception settings.")
    if type_code not in REGISTRY:
        raise ExceptionActionError(f"Unknown exception type {type_code!r}.")
    rule = REGISTRY[type_code]
    if sla_minutes is not None and int(sla_minutes) <= 0:
        raise ExceptionActionError("The SLA must be at least one minute.")
    if sla_minutes is not None and int(sla_minutes) > SLA_MAX_MINUTES:
        raise ExceptionActionError(f"The SLA can be at most {SLA_MAX_MINUTES:,} minutes (90 days).")
    clean = {}
    for name, value in (thresholds or {}).items():
        if name not in rule.thresholds:
            raise ExceptionActionError(f"{rule.code} has no threshold {name!r}.")
        if value in (None, ""):
            continue  # back to the default
        coerced = _coerce_threshold(name, rule.thresholds[name], value, threshold_limits(rule, name))
        if coerced != rule.thresholds[name]:
            clean[name] = coerced
    default_minutes = int(rule.sla.total_seconds() // 60)
    wanted = {"sla_minutes": None if sla_minutes in (None, default_minutes) else int(sla_minutes),
              "thresholds": clean, "is_enabled": bool(is_enabled)}
    setting = ExceptionTypeSetting.objects.filter(type_code=type_code).first()
    current = ({"sla_minutes": setting.sla_minutes, "thresholds": setting.thresholds or {},
                "is_enabled": setting.is_enabled} if setting is not None
               else {"sla_minutes": None, "thresholds": {}, "is_enabled": True})
    if current == wanted:
        return setting
    setting = setting or ExceptionTypeSetting(type_code=type_code)
    for name, value in wanted.items():
        setattr(setting, name, value)
    setting.updated_by = user
    record_as(setting, actor=user, reason=reason)
    setting.save()
    return setting


@transaction.atomic
def exception_settings_update_all(*, user: AbstractBaseUser, changes: dict[str, dict[str, Any]]) -> list[str]:
    """One Save for the whole settings page: every type's values (``{type_code: {sla_minutes,
    thresholds, is_enabled}}``) stored together, or none of them if one is refused.
    Returns the codes whose settings changed."""
    before = {s.type_code: (s.sla_minutes, s.thresholds, s.is_enabled)
              for s in ExceptionTypeSetting.objects.filter(type_code__in=list(changes))}
    for code, values in changes.items():
        exception_settings_update(type_code=code, user=user, **values)
    after = {s.type_code: (s.sla_minutes, s.thresholds, s.is_enabled)
             for s in ExceptionTypeSetting.objects.filter(type_code__in=list(changes))}
    return [code for code in changes if before.get(code) != after.get(code)]


def exception_settings_restore(*, history_id: int, actor: AbstractBaseUser) -> ExceptionTypeSetting:
    """Put one type's settings back as they were in a version (a new, audited change)."""
    from returnsync.history import restore_reason
    from returnsync.services import ActionRefused

    if not _is_admin(actor):
        raise PermissionDenied("Only an admin restores exception settings.")
    record = ExceptionTypeSetting.history.filter(history_id=history_id).first()
    if record is None or record.history_type == "-" or record.type_code not in REGISTRY:
        raise ActionRefused(f"No version #{history_id} to restore.")
    try:
        setting = exception_settings_update(
            type_code=record.type_code, user=actor, sla_minutes=record.sla_minutes,
            thresholds={k: v for k, v in (record.thresholds or {}).items() if k in REGISTRY[record.type_code].thresholds},
            is_enabled=record.is_enabled, reason=restore_reason(record))
    except ExceptionActionError as exc:
        raise ActionRefused(str(exc)) from None
    return setting or ExceptionTypeSetting(type_code=record.type_code)


# --- Used by the notification digest ---------------------------------------------------------


def exceptions_mark_breached(*, now=None) -> list[int]:
    """Stamp ``breached_at`` on active cases past their due time that nobody stamped yet,
    with a ``breached`` activity each. Returns their ids."""
    now = now or timezone.now()
    with transaction.atomic():
        ids = list(
            ExceptionCase.objects.select_for_update()
            .filter(Q(status__in=ExceptionStatus.active()), due_at__lte=now, breached_at__isnull=True)
            .values_list("pk", flat=True)
        )
        if ids:
            ExceptionCase.objects.filter(pk__in=ids, breached_at__isnull=True).update(breached_at=now)
            statuses = dict(ExceptionCase.objects.filter(pk__in=ids).values_list("pk", "status"))
            ExceptionActivity.objects.bulk_create(
                ExceptionActivity(exception_id=pk, verb=ActivityVerb.BREACHED, from_status=statuses[pk],
                                  to_status=statuses[pk], created_at=now)
                for pk in ids
            )
    return ids
