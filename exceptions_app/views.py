"""Exception pages: the queue, one exception, its actions, the runbook, the settings.

Views only translate HTTP to service calls (``exceptions_app.services``) and reads
(``exceptions_app.selectors``). Actions answer htmx with the fragment to swap (a queue
row or the detail page's panel, plus out-of-band counters) and plain posts with a
redirect and a message.
"""
from __future__ import annotations

from typing import Any
from urllib.parse import parse_qs, urlsplit

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views import View
from django.views.generic import TemplateView

from exceptions_app import filtersets, forms, selectors, services, tables
from exceptions_app.models import ExceptionCase
from exceptions_app.rules import REGISTRY, rules
from returnsync.money import partial_refund_compute
from returnsync.roles import Role, user_roles
from returnsync.selectors import return_timeline
from returnsync.views.base import FilteredTableView, RoleRequiredMixin


def counter_roles(request: HttpRequest, query: dict[str, list[str]] | None = None) -> list[str]:
    """The queues the page shows: the ``owner_role`` filter, else the user's own roles."""
    if query is None:
        query = {k: request.GET.getlist(k) for k in request.GET}
    chosen = [r for r in query.get("owner_role", []) if r in Role.values]
    return chosen or filtersets.default_roles(request.user)


def counters_context(request: HttpRequest, roles: list[str]) -> dict[str, Any]:
    return {
        "counts": selectors.exception_counts(owner_roles=frozenset(roles) or None, user=request.user),
        "counter_roles": [Role(r).label for r in roles],
    }


class ExceptionListView(FilteredTableView):
    nav_name = "exception_list"
    template_name = "exceptions/list.html"
    partial_template_name = "exceptions/list_partial.html"
    title = "Exceptions"
    description = (
        "Disagreements between TikTok Shop and the portal, each owned by a role and timed by its SLA. "
        "Claim one to work on it; search by order id, return id, tracking number or zip."
    )
    empty_message = "No active exceptions in this queue."
    selector = selectors.exception_list
    filterset_class = filtersets.ExceptionFilterSet
    table_class = tables.ExceptionTable
    # A work queue is read from the top: 25 rows a page (more on request, up to the cap)
    # keeps each htmx swap quick on a queue of 100,000.
    per_page_default = 25

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(counters_context(self.request, counter_roles(self.request)))
        context["bulk_form"] = forms.BulkForm()
        return context


# Cases about a TikTok request awaiting the seller: the page carries the request card (approve/reject).
REQUEST_DECISION_TYPES = frozenset({"approval_deadline"})


class ExceptionDetailView(RoleRequiredMixin, TemplateView):
    nav_name = "exception_list"
    template_name = "exceptions/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            case = selectors.exception_get(pk=self.kwargs["pk"])
        except ExceptionCase.DoesNotExist:
            raise Http404("No such exception") from None
        evidence = case.evidence if isinstance(case.evidence, dict) else {}
        partial = (evidence.get("computed") or {}).get("partial_refund") if isinstance(
            evidence.get("computed"), dict) else None
        if not partial and case.type_code == "partial_refund" and case.portal_return_id:
            partial = partial_refund_compute(portal_return=case.portal_return).as_json()
        rule = REGISTRY.get(case.type_code)
        context.update(
            case=case,
            rule=rule,
            evidence_rows=selectors.evidence_rows(evidence),
            computed=selectors.evidence_computed(evidence),
            partial_refund=partial,
            timeline=list(return_timeline(marketplace_return=case.marketplace_return))
            if case.marketplace_return_id else [],
        )
        if case.type_code in REQUEST_DECISION_TYPES and case.marketplace_return_id:
            from returnsync.views.returns import decision_context

            context.update(decision_context(self.request, case.marketplace_return), request_card=True)
        context.update(panel_context(self.request, case))
        return context


def money_context(case: ExceptionCase) -> dict[str, Any]:
    """A partial-refund case's money, live: what is due, what TikTok refunded, what to do,
    TikTok's own deadline, and whether it would take the rest as a partial-refund offer."""
    from returnsync import refund_gate, registry

    portal = case.portal_return if case.type_code == "partial_refund" else None
    settlement = refund_gate.settlement_for(portal_return=portal) if portal is not None else None
    if settlement is None:
        return {}
    mreturn = portal.marketplace_return
    offer_refusal = "Not linked to a TikTok return."
    if mreturn is not None and settlement.action == refund_gate.REFUND:
        offer_refusal = registry.marketplace_for(mreturn.connection).partial_refund_offer_refusal(
            marketplace_return=mreturn, amount=settlement.remaining)
    elif settlement.action != refund_gate.REFUND:
        offer_refusal = "Nothing remains to refund."
    return {"settlement": settlement, "settlement_text": settlement.describe(), "tiktok": mreturn,
            "offer_refusal": offer_refusal,
            "tiktok_deadline": refund_gate.marketplace_deadline(mreturn)}


def panel_context(request: HttpRequest, case: ExceptionCase, **forms_: Any) -> dict[str, Any]:
    may_act = services.exception_may_act(exception=case, user=request.user)
    resolve_initial = {}
    if case.type_code in services.AMOUNT_REQUIRED_TYPES and case.amount is not None:
        resolve_initial["resolved_amount"] = case.amount
    return {
        **money_context(case),
        "case": case,
        "may_act": may_act,
        "is_admin": Role.ADMIN in user_roles(request.user),
        "activities": list(selectors.exception_activities(exception=case)),
        "amount_required": case.type_code in services.AMOUNT_REQUIRED_TYPES,
        "resolve_form": forms_.get("resolve_form") or forms.ResolveForm(initial=resolve_initial),
        "dismiss_form": forms_.get("dismiss_form") or forms.DismissForm(),
        "comment_form": forms.CommentForm(),
        "reassign_form": forms.ReassignForm(users=selectors.role_members(role=case.owner_role)) if may_act else None,
        "can_retry": may_act and case.is_active and (case.write_back_id or case.inbound_event_id),
        "can_mirror": may_act and case.is_active and case.type_code in services.MIRROR_TYPES
        and case.marketplace_return_id is not None,
        **_resend_context(case, may_act=may_act),
    }


def _resend_context(case: ExceptionCase, *, may_act: bool) -> dict[str, Any]:
    """A status-drift case offers to send the receipt again, showing TikTok's last answer to it."""
    from returnsync.choices import WriteBackAction
    from returnsync.models import WriteBack

    if not (may_act and case.is_active and case.type_code in services.RESEND_TYPES
            and case.marketplace_return_id is not None):
        return {}
    last = (WriteBack.objects.filter(marketplace_return_id=case.marketplace_return_id,
                                     action=WriteBackAction.APPROVE_RECEIVED_PACKAGE)
            .order_by("-created_at", "-pk").first())
    return {"can_resend": last is not None, "last_receipt": last}


class ExceptionActionView(RoleRequiredMixin, View):
    """POST /exceptions/<pk>/<action>/: claim, release, reassign, resolve, dismiss, retry, comment,
    offer (a partial refund on TikTok), mirror (create the portal record), resend (the receipt)."""

    nav_name = "exception_list"
    http_method_names = ("post",)
    ACTIONS = ("claim", "release", "reassign", "resolve", "dismiss", "retry", "comment", "offer", "mirror",
               "resend")

    def post(self, request: HttpRequest, pk: int, action: str) -> HttpResponse:
        if action not in self.ACTIONS:
            raise Http404("No such action")
        user = request.user
        case = ExceptionCase.objects.filter(pk=pk).only("pk", "owner_role").first()
        if case is None:
            raise Http404("No such exception")
        if not services.exception_may_act(exception=case, user=user):
            raise PermissionDenied(
                f"Exception {pk} belongs to {case.get_owner_role_display()}; only that role or an admin may act on it."
            )
        level, text, bound = messages.SUCCESS, "", {}
        try:
            if action == "claim":
                result = services.exception_claim(exception_id=pk, user=user)
                level = messages.SUCCESS if result.won else messages.WARNING
                text = result.message
            elif action == "release":
                services.exception_release(exception_id=pk, user=user)
                text = "Released: the exception is back in the queue."
            elif action == "reassign":
                form = forms.ReassignForm(request.POST, users=selectors.role_members(role=case.owner_role))
                if not form.is_valid():
                    raise services.ExceptionActionError("Choose someone holding the owning role.")
                case = services.exception_reassign(exception_id=pk, user=user, to_user=form.cleaned_data["to_user"])
                text = f"Assigned to {case.assignee.get_username()}."
            elif action == "resolve":
                form = bound["resolve_form"] = forms.ResolveForm(request.POST)
                if not form.is_valid():
                    raise services.ExceptionActionError(_form_errors(form))
                services.exception_resolve(exception_id=pk, user=user, code=form.cleaned_data["code"],
                                           note=form.cleaned_data["note"],
                                           resolved_amount=form.cleaned_data["resolved_amount"],
                                           confirm_over=form.cleaned_data["confirm_over"])
                text = "Resolved."
            elif action == "dismiss":
                form = bound["dismiss_form"] = forms.DismissForm(request.POST)
                if not form.is_valid():
                    raise services.ExceptionActionError("Say why the exception is dismissed.")
                services.exception_dismiss(exception_id=pk, user=user, reason=form.cleaned_data["reason"])
                text = "Dismissed."
            elif action == "retry":
                services.exception_retry(exception_id=pk, user=user)
                text = "The failed step is queued again; the exception closes by itself once it succeeds."
            elif action == "comment":
                form = forms.CommentForm(request.POST)
                if not form.is_valid():
                    raise services.ExceptionActionError("The comment is empty.")
                services.exception_comment(exception_id=pk, user=user, note=form.cleaned_data["note"])
                text = "Comment added."
            elif action == "mirror":
                text = services.exception_mirror_now(exception_id=pk, user=user)
            elif action == "resend":
                text = services.exception_resend_receipt(exception_id=pk, user=user)
            elif action == "offer":
                services.exception_offer_partial_refund(exception_id=pk, user=user)
                text = ("Partial refund offered on TikTok: the buyer must accept it; this task closes itself "
                        "when TikTok's refund matches.")
            bound = {}  # a step that worked shows fresh forms
        except services.ExceptionActionError as error:
            level, text = messages.ERROR, str(error)

        if not request.htmx:
            messages.add_message(request, level, text)
            return HttpResponseRedirect(reverse("exception_detail", args=[pk]))
        message = {"level": level, "tags": messages.DEFAULT_TAGS[level], "text": text}
        current = parse_qs(urlsplit(request.headers.get("HX-Current-URL", "")).query)
        context = counters_context(request, counter_roles(request, current))
        context["message"] = message
        if request.POST.get("view") == "row":
            table = tables.ExceptionTable(selectors.exception_list().filter(pk=pk), request=request)
            context["table"] = table
            return render(request, "exceptions/includes/row_response.html", context)
        case = selectors.exception_get(pk=pk)
        context.update(panel_context(request, case, **bound))
        return render(request, "exceptions/includes/panel.html", context)


def _form_errors(form) -> str:
    return " ".join(f"{form.fields[name].label if name in form.fields else ''}: {' '.join(errors)}".lstrip(": ")
                    for name, errors in form.errors.items())


class ExceptionBulkView(RoleRequiredMixin, View):
    """POST /exceptions/bulk/: claim, release, resolve, retry or mirror the ticked exceptions; reports per id."""

    nav_name = "exception_list"
    http_method_names = ("post",)

    def post(self, request: HttpRequest) -> HttpResponse:
        form = forms.BulkForm(request.POST)
        outcomes, error = [], ""
        if not form.is_valid():
            error = _form_errors(form)
        else:
            data, ids = form.cleaned_data, form.cleaned_data["ids"]
            if data["action"] == "claim":
                outcomes = services.exception_bulk_claim(exception_ids=ids, user=request.user)
            elif data["action"] == "release":
                outcomes = services.exception_bulk_release(exception_ids=ids, user=request.user)
            elif data["action"] == "retry":
                outcomes = services.exception_bulk_retry(exception_ids=ids, user=request.user)
            elif data["action"] == "mirror":
                outcomes = services.exception_bulk_mirror(exception_ids=ids, user=request.user)
            elif not data["code"] or not data["note"].strip():
                error = "To resolve in bulk, choose a resolution and write a note."
            else:
                outcomes = services.exception_bulk_resolve(exception_ids=ids, user=request.user,
                                                           code=data["code"], note=data["note"])
        done = sum(1 for o in outcomes if o.ok)
        if not request.htmx:
            if error:
                messages.error(request, error)
            else:
                messages.info(request, f"{done} of {len(outcomes)} done.")
                for outcome in outcomes:
                    if not outcome.ok:
                        messages.warning(request, outcome.message)
            target = request.POST.get("next", "")
            if not url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
                target = reverse("exception_list")
            return HttpResponseRedirect(target)
        response = render(request, "exceptions/includes/bulk_result.html",
                          {"outcomes": outcomes, "done": done, "error": error}, status=200)
        if outcomes:
            response["HX-Trigger"] = "exceptionsChanged"
        return response


class ServiceLevelView(RoleRequiredMixin, TemplateView):
    """How the integration measures against the marketplace's requirements: requests answered
    before TikTok's deadline, receipts written back within the threshold, refunds within the
    service level; per day, shop and portal, with the worst cases linked."""

    nav_name = "service_levels"
    template_name = "exceptions/service_levels.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from exceptions_app import service_levels
        from returnsync.views.finance import period

        context = super().get_context_data(**kwargs)
        form = forms.ServiceLevelForm(self.request.GET or None)
        since, until, portal = period(form)
        shop = form.cleaned_data.get("shop") if form.is_bound and form.is_valid() else None
        if not form.is_bound:
            form = forms.ServiceLevelForm(initial={"since": since, "until": until})
        window = service_levels.Window.of_days(since, until, shop_id=shop.pk if shop else None,
                                               portal_id=portal.pk if portal else None)
        context.update(form=form, since=since, until=until, measures=service_levels.report(window),
                       outcome_labels=service_levels.OUTCOME_LABELS)
        return context


class RunbookView(RoleRequiredMixin, TemplateView):
    """Generated from the rule registry: the handover document for CX, operations, finance."""

    nav_name = "runbook"
    template_name = "exceptions/runbook.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context["entries"] = selectors.runbook_entries()
        return context


class ExceptionSettingsView(RoleRequiredMixin, TemplateView):
    """Admin: every type's enabled flag, SLA and thresholds in one form with one Save (in
    hours or days, defaults shown); nothing is saved while any field is wrong, and each
    wrong field says why. Each type links its change history."""

    nav_name = "exception_settings"
    template_name = "exceptions/settings.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        from exceptions_app.models import ExceptionTypeSetting

        context = super().get_context_data(**kwargs)
        page = kwargs.get("page") or forms.SettingsPageForm(rules(include_disabled=True))
        last = {s.type_code: s for s in ExceptionTypeSetting.objects.select_related("updated_by")}
        context.update(page=page, forms=page.forms, last_changed=last)
        failures = selectors.rule_failures()
        for form in page.forms:
            form.failure = failures.get(form.rule.code)
        return context

    def post(self, request: HttpRequest) -> HttpResponse:
        page = forms.SettingsPageForm(rules(include_disabled=True), data=request.POST)
        if page.is_valid():
            try:
                changed = services.exception_settings_update_all(user=request.user, changes=page.changes())
            except services.ExceptionActionError as error:
                messages.error(request, f"Nothing was saved: {error}")
            else:
                titles = [REGISTRY[code].title for code in changed]
                messages.success(request, f"Saved: {', '.join(titles)}." if titles else "Nothing changed.")
                return HttpResponseRedirect(reverse("exception_settings"))
        return self.render_to_response(self.get_context_data(page=page), status=400)


def _setting_fields(records):
    from returnsync.history import TrackedField, yes_no

    def sla(value) -> str:
        from datetime import timedelta

        return "the default" if value is None else selectors.duration_text(timedelta(minutes=value))

    def thresholds(value) -> str:
        return "; ".join(f"{forms.threshold_label(k)} = {v}" for k, v in sorted((value or {}).items())) or "defaults"

    return (TrackedField("is_enabled", "Raised", yes_no), TrackedField("sla_minutes", "SLA", sla),
            TrackedField("thresholds", "Thresholds", thresholds))


def _setting_lookup(kwargs):
    from exceptions_app.models import ExceptionTypeSetting

    code = kwargs.get("code", "")
    if code not in REGISTRY:
        return None
    return ExceptionTypeSetting.objects.filter(type_code=code).first() or ExceptionTypeSetting(type_code=code)


def _setting_kind():
    from exceptions_app.models import ExceptionTypeSetting
    from returnsync.views import history

    return history.kind_register(history.HistoryKind(
        model=ExceptionTypeSetting, label="exception type's settings", history_url_name="exception_setting_history",
        restore_url_name="exception_setting_restore", fields=_setting_fields,
        restore=services.exception_settings_restore,
        page_url=lambda obj: f"{reverse('exception_settings')}#type-{obj.type_code}",
        records=lambda obj: ExceptionTypeSetting.history.filter(type_code=obj.type_code),
        key=lambda obj: obj.type_code, record_key=lambda record: record.type_code, lookup=_setting_lookup,
    ))


SETTING_HISTORY = _setting_kind()
