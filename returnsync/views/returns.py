from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.urls import reverse
from django.views.generic import TemplateView, View

from returnsync import registry, selectors
from returnsync.models import MarketplaceReturn
from returnsync.views.base import RoleRequiredMixin


class ReturnLookupView(RoleRequiredMixin, View):
    """CX's one search box: a TikTok order id, return id, tracking number or buyer zip.
    Exactly one match opens the return; otherwise the returns list shows the matches."""

    nav_name = "return_list"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        q = request.GET.get("q", "").strip()
        if q:
            pks = list(selectors.return_lookup(q=q).values_list("pk", flat=True)[:2])
            if len(pks) == 1:
                return HttpResponseRedirect(reverse("return_detail", args=[pks[0]]))
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
        context.update(registry.page_context("return_detail", request=self.request,
                                             marketplace_return=marketplace_return))
        return context
