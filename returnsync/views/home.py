from __future__ import annotations

from typing import Any

from django.views.generic import TemplateView

from returnsync import selectors
from returnsync.roles import Role, user_roles
from returnsync.views.base import RoleRequiredMixin
from returnsync.views.charts import bar_pairs_svg

DEADLINE_WINDOW_HOURS = 12
REFUND_WINDOW_HOURS = 24
DEADLINES_LISTED = 10
EXCEPTIONS_LISTED = 10
CHART_DAYS = 14
REFUND_LAG_DAYS = 30


class HomeView(RoleRequiredMixin, TemplateView):
    """Today at a glance: everyone sees the return pipeline, their own exceptions and the
    charts; each role adds its own section."""

    nav_name = "home"
    template_name = "home.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        held = user_roles(self.request.user)
        admin = Role.ADMIN in held

        def shows(role: Role) -> bool:
            return admin or role in held

        stages = selectors.home_stage_counts()
        mine = selectors.exceptions_for_user(user=self.request.user, roles=held)
        breached = selectors.exceptions_breached(roles=held)
        per_day = selectors.exceptions_opened_resolved_per_day(days=CHART_DAYS)
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
            my_exceptions_count=mine.count(),
            my_exceptions=list(mine[:EXCEPTIONS_LISTED]),
            breached_count=breached.count(),
            exception_list_url=selectors.url_or_none("exception_list"),
            exception_pages=selectors.url_or_none("exception_detail", 0) is not None,
            chart_days=CHART_DAYS,
            exceptions_chart=bar_pairs_svg(
                [(p.day.strftime("%d %b"), p.opened, p.resolved) for p in per_day],
                legend=("Opened", "Resolved"),
                title=f"Exceptions opened and resolved per day, last {CHART_DAYS} days",
            ),
            exceptions_chart_rows=per_day,
            refund_lag=selectors.refund_lag_distribution(days=REFUND_LAG_DAYS),
            refund_lag_days=REFUND_LAG_DAYS,
        )
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
