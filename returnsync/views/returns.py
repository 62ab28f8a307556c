from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.views.generic import TemplateView, View

from returnsync import registry, selectors, services
from returnsync.models import MarketplaceReturn, PortalReturn
from returnsync.roles import Role, has_any_role, roles_with_admin
from returnsync.views.base import RoleRequiredMixin


class ReturnLookupView(RoleRequiredMixin, View):
    """CX's one search box: a TikTok order id, return id, tracking number or buyer zip.
    Exactly one match opens the return; otherwise the returns list shows the matches."""

    nav_name = "return_list"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        q = request.GET.get("q", "").strip()
        if q:
            pks = list(selectors.return_lookup(q=q).values_list("pk", flat=True)[:2])
            portal_only = list(selectors.portal_only_lookup(q=q).values_list("pk", flat=True)[:2])
            if len(pks) == 1 and not portal_only:
                return HttpResponseRedirect(reverse("return_detail", args=[pks[0]]))
            if len(portal_only) == 1 and not pks:  # an orphan: only the portal knows it
                return HttpResponseRedirect(reverse("portal_return_detail", args=[portal_only[0]]))
        query = f"?{urlencode({'q': q})}" if q else ""
        return HttpResponseRedirect(reverse("return_list") + query)


class ReturnDetailView(RoleRequiredMixin, TemplateView):
    """One return as both systems see it, side by side, with one timeline across them,
    its refunds, its open exceptions and the buyer's return-portal link."""

    nav_name = "return_list"  # same audience as the list it is opened from
    template_name = "returns/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            marketplace_return = selectors.return_get(pk=self.kwargs["pk"])
        except MarketplaceReturn.DoesNotExist:
            raise Http404("No such return") from None
        portals = list(marketplace_return.portal_returns.all())
        context.update(
            ret=marketplace_return,
            order=marketplace_return.order,
            portals=portals,
            refunds=list(selectors.return_refunds(marketplace_return=marketplace_return)),
            mirror_attempts=[] if portals else list(
                selectors.return_mirror_attempts(marketplace_return=marketplace_return)),
            timeline=list(selectors.return_timeline(marketplace_return=marketplace_return)),
            combined=selectors.combined_returns(marketplace_return=marketplace_return),
            portal_links=selectors.return_portal_links(
                marketplace_return=marketplace_return, portals=portals
            ),
        )
        context.update(decision_context(self.request, marketplace_return))
        context.update(registry.page_context("return_detail", request=self.request,
                                             marketplace_return=marketplace_return))
        return context


def decision_context(request: HttpRequest, marketplace_return: MarketplaceReturn, message=None) -> dict[str, Any]:
    """What the request card shows: the decisions the marketplace takes now, whether this
    person may take them, and the Seller Center links."""
    ops = registry.marketplace_for(marketplace_return.connection)
    return {"ret": marketplace_return, "decisions": ops.request_decisions(marketplace_return),
            "may_decide": has_any_role(request.user, frozenset({Role.CX})),
            "seller_center": ops.seller_center_links(marketplace_return), "decide_message": message}


class ReturnDecideView(RoleRequiredMixin, View):
    """POST ``kind`` = approve | reject (``reject_reason``, ``comment``): CX answers the TikTok
    request; htmx gets the request card back with the outcome."""

    nav_name = "return_list"
    roles = roles_with_admin(Role.CX)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        from django.contrib import messages

        marketplace_return = get_object_or_404(MarketplaceReturn.objects.select_related("connection"), pk=pk)
        kind = request.POST.get("kind", "")
        try:
            write_back = services.marketplace_request_decide(
                marketplace_return=marketplace_return, kind=kind, user=request.user,
                reject_reason=request.POST.get("reject_reason", ""), comment=request.POST.get("comment", ""))
            level, text = messages.SUCCESS, (f"Sent to TikTok: {write_back.payload.get('decision')} (it shows on "
                                             f"the timeline once TikTok answers).")
        except services.ActionRefused as refused:
            level, text = messages.ERROR, str(refused)
        if not request.htmx:
            messages.add_message(request, level, text)
            return HttpResponseRedirect(reverse("return_detail", args=[pk]))
        message = {"tags": messages.DEFAULT_TAGS[level], "text": text}
        return TemplateResponse(request, "returns/includes/decide.html",
                                decision_context(request, marketplace_return, message))


class ReturnRejectReasonsView(RoleRequiredMixin, View):
    """GET: the reasons TikTok takes for rejecting this request now (asked live)."""

    nav_name = "return_list"
    roles = roles_with_admin(Role.CX)

    def get(self, request: HttpRequest, pk: int) -> HttpResponse:
        marketplace_return = get_object_or_404(MarketplaceReturn.objects.select_related("connection"), pk=pk)
        context: dict[str, Any] = {"ret": marketplace_return}
        try:
            context["reasons"] = registry.marketplace_for(marketplace_return.connection).reject_reasons(
                marketplace_return)
        except Exception as error:  # noqa: BLE001 — TikTok unreachable or refusing: say so in the form
            context["error"] = str(error)[:300]
        return TemplateResponse(request, "returns/includes/reject_reasons.html", context)


class PortalReturnDetailView(RoleRequiredMixin, TemplateView):
    """A portal record linked to no TikTok return (an orphan, or one not linked yet): what
    the portal says, its timeline and open exceptions, and, for operations, linking it by
    hand to the TikTok return it belongs to (``?q=`` searches the TikTok side)."""

    nav_name = "return_list"
    template_name = "returns/portal_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            portal_return = selectors.portal_return_get(pk=self.kwargs["pk"])
        except PortalReturn.DoesNotExist:
            raise Http404("No such portal return") from None
        if portal_return.marketplace_return_id:
            context["linked_to"] = portal_return.marketplace_return
        q = self.request.GET.get("q", "").strip()
        may_link = has_any_role(self.request.user, frozenset({Role.OPERATIONS}))
        candidates = (list(selectors.link_candidates(portal_return=portal_return, q=q))
                      if may_link and not portal_return.marketplace_return_id else [])
        chosen = self.request.GET.get("choose", "")
        context.update(
            pr=portal_return, q=q, may_link=may_link and not portal_return.marketplace_return_id,
            candidates=candidates, chosen=next((c for c in candidates if str(c.pk) == chosen), None),
            timeline=list(selectors.portal_return_timeline(portal_return=portal_return)),
        )
        context.update(registry.page_context("portal_return_detail", request=self.request,
                                             portal_return=portal_return))
        return context


class PortalReturnLinkView(RoleRequiredMixin, View):
    """POST ``marketplace_return``: operations links the portal record to that TikTok return."""

    nav_name = "return_list"
    roles = roles_with_admin(Role.OPERATIONS)

    def post(self, request: HttpRequest, pk: int) -> HttpResponse:
        from django.contrib import messages

        from returnsync.lifecycle import LinkRefused, portal_return_link_by_hand

        portal_return = get_object_or_404(PortalReturn.objects.select_related("connection"), pk=pk)
        target = MarketplaceReturn.objects.filter(pk=request.POST.get("marketplace_return") or 0).first() \
            if str(request.POST.get("marketplace_return", "")).isdigit() else None
        if target is None:
            messages.error(request, "Choose the TikTok return to link it to.")
            return HttpResponseRedirect(reverse("portal_return_detail", args=[pk]))
        try:
            portal_return_link_by_hand(portal_return=portal_return, marketplace_return=target, user=request.user)
        except LinkRefused as refused:
            messages.error(request, f"Not linked: {refused}")
            return HttpResponseRedirect(reverse("portal_return_detail", args=[pk]))
        messages.success(request, f"Linked {portal_return.external_id} to TikTok return {target.return_id}: the "
                                  "orphan case closes on the next detection pass. Correct the order number in "
                                  f"{portal_return.connection.get_kind_display()} too.")
        return HttpResponseRedirect(reverse("return_detail", args=[target.pk]))