from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.http import HttpRequest, HttpResponse
from django.utils import timezone
from django.views.generic import TemplateView

from returnsync import registry, selectors
from returnsync.forms import ReconciliationForm
from returnsync.views.base import RoleRequiredMixin, stream_csv

DEFAULT_DAYS = 14
MAX_DAYS = 366
TASKS_LISTED = 50


class FinanceView(RoleRequiredMixin, TemplateView):
    """Finance's day: partial refunds and refund mismatches to settle, and the
    reconciliation of TikTok refunds against what the portal authorised and the
    warehouse received, per day and connection (``?export=csv`` for the report)."""

    nav_name = "finance"
    template_name = "finance/index.html"

    def period(self, form: ReconciliationForm):
        today = timezone.localdate()
        data = form.cleaned_data if form.is_valid() else {}
        until = data.get("until") or today
        since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
        if since > until:
            since, until = until, since
        since = max(since, until - timedelta(days=MAX_DAYS))
        connection = data.get("connection")
        return since, until, connection

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ReconciliationForm(request.GET or None)
        since, until, connection = self.period(form)
        report = selectors.reconciliation_report(
            since=since, until=until, connection_id=connection.pk if connection else None
        )
        if request.GET.get("export") == "csv" and form.is_bound and not form.is_valid():
            # An export must be of the period asked for, or say why not (never another period).
            return HttpResponse(" ".join(e for errors in form.errors.values() for e in errors),
                                status=400, content_type="text/plain; charset=utf-8")
        if request.GET.get("export") == "csv":
            return stream_csv(self.csv_rows(report), f"reconciliation-{since}-{until}.csv")
        if not form.is_bound:  # show the period the report covers
            form = ReconciliationForm(initial={"since": since, "until": until})
        context = self.get_context_data(
            form=form, since=since, until=until, report=report, **kwargs
        )
        return self.render_to_response(context)

    @staticmethod
    def csv_rows(report):
        buckets = selectors.Bucket3.ALL
        yield [
            "day",
            "connection",
            "currency",
            "returns",
            "received",
            *(f"{b}_count" for b in buckets),
            "tiktok_refunded_total",
            *(f"{b}_tiktok_refunded" for b in buckets),
            "portal_expected_total",
            *(f"{b}_portal_expected" for b in buckets),
        ]
        for row in report:
            yield [
                row.day.isoformat(),
                row.connection_name,
                row.currency,
                row.total,
                row.received,
                *(row.counts[b] for b in buckets),
                f"{row.tiktok_total:.2f}",
                *(f"{row.tiktok[b]:.2f}" for b in buckets),
                f"{row.portal_total:.2f}",
                *(f"{row.portal[b]:.2f}" for b in buckets),
            ]

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        partials = selectors.partial_refunds_due()
        report = context["report"]
        context.update(
            partials=list(partials[:TASKS_LISTED]),
            partials_count=partials.count(),
            totals={
                "total": sum(r.total for r in report),
                "received": sum(r.received for r in report),
                **{b: sum(r.counts[b] for r in report) for b in selectors.Bucket3.ALL},
            },
            export_query=self.request.GET.copy(),
        )
        context["export_query"]["export"] = "csv"
        context.update(registry.page_context("finance", request=self.request))
        return context
