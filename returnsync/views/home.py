from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from returnsync import registry, selectors
from returnsync.roles import Role, user_roles
from returnsync.views.base import RoleRequiredMixin

DEADLINE_WINDOW_HOURS = 12
REFUND_WINDOW_HOURS = 24
DEADLINES_LISTED = 10
REFUND_LAG_DAYS = 30


class HomeView(RoleRequiredMixin, TemplateView):
    """Today at a glance: everyone sees the return pipeline, their own exceptions and the
    charts; each role adds its own section. The exception engine adds its part through the
    registry (``page_context("home")``)."""

    nav_name = "home"
    template_name = "home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        held = user_roles(self.request.user)
        admin = Role.ADMIN in held

        def shows(role: Role) -> bool:
            return admin or role in held

        stages = selectors.home_stage_counts()
        context.update(
            stage_counts=stages,
            returns_total=sum(s.count for s in stages),
            intake_today=selectors.home_intake_today(),
            show_cx=shows(Role.CX),
            show_finance=shows(Role.FINANCE),
            show_operations=shows(Role.OPERATIONS),
            show_admin=admin,
            deadline_hours=DEADLINE_WINDOW_HOURS,
            refund_hours=REFUND_WINDOW_HOURS,
            refund_lag=selectors.refund_lag_distribution(days=REFUND_LAG_DAYS),
            refund_lag_days=REFUND_LAG_DAYS,
        )
        context.update(registry.page_context("home", request=self.request))
        if context["show_cx"]:
            lapsing = selectors.home_deadlines_lapsing(hours=DEADLINE_WINDOW_HOURS)
            context["deadlines_count"] = lapsing.count()
            context["deadlines"] = list(lapsing[:DEADLINES_LISTED])
        if context["show_finance"]:
            context["refund_totals"] = selectors.home_refund_totals(hours=REFUND_WINDOW_HOURS)
        if context["show_operations"]:
            context["write_back_counts"] = selectors.home_write_back_counts()
            context["restock_counts"] = selectors.home_restock_counts()
        if context["show_admin"]:
            context["connections"] = list(selectors.home_connections())
        return context
