from __future__ import annotations

from typing import Any

from django.http import Http404
from django.views.generic import TemplateView

from returnsync import selectors
from returnsync.models import MarketplaceReturn
from returnsync.views.base import RoleRequiredMixin


class ReturnDetailView(RoleRequiredMixin, TemplateView):
    """One return as both systems see it, side by side, with one timeline across them."""

    nav_name = "return_list"  # same audience as the list it is opened from
    template_name = "returns/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            marketplace_return = selectors.return_get(pk=self.kwargs["pk"])
        except MarketplaceReturn.DoesNotExist:
            raise Http404("No such return") from None
        context.update(
            ret=marketplace_return,
            order=marketplace_return.order,
            portals=list(marketplace_return.portal_returns.all()),
            refunds=list(selectors.return_refunds(marketplace_return=marketplace_return)),
            timeline=list(selectors.return_timeline(marketplace_return=marketplace_return)),
        )
        return context
