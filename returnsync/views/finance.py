from __future__ import annotations

from datetime import date, timedelta
from typing import Any
from urllib.parse import urlencode

from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.urls import reverse
from django.utils import timezone
from django.views.generic import TemplateView

from returnsync import reconciliation, registry
from returnsync.forms import ReconciliationForm
from returnsync.views.base import RoleRequiredMixin, stream_csv

DEFAULT_DAYS = 14
MAX_DAYS = 366
TASKS_LISTED = 50
RETURNS_PER_PAGE = 50


def period(form: ReconciliationForm) -> tuple[date, date, Any]:
    """The period and connection a finance page covers (the last two weeks by default; at
    most a year; a swapped range is put right)."""
    today = timezone.localdate()
    data = form.cleaned_data if form.is_valid() else {}
    until = data.get("until") or today
    since = data.get("since") or until - timedelta(days=DEFAULT_DAYS - 1)
    if since > until:
        since, until = until, since
    since = max(since, until - timedelta(days=MAX_DAYS))
    return since, until, data.get("connection")


def _money(value) -> str:
    return "" if value is None else f"{value:.2f}"


class FinanceView(RoleRequiredMixin, TemplateView):
    """Finance's day: the money that waits for a person (partial returns to settle, values
    to check), and the reconciliation of TikTok's refunds against what was due, per day,
    connection and currency, with money in every bucket and totals per currency. Every
    count links to the returns behind it. ``?export=csv`` (per day) or ``?export=returns``
    (per return)."""

    nav_name = "finance"
    template_name = "finance/index.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ReconciliationForm(request.GET or None)
        since, until, connection = period(form)
        connection_id = connection.pk if connection else None
        export = request.GET.get("export")
        if export in ("csv", "returns") and form.is_bound and not form.is_valid():
            # An export must be of the period asked for, or say why not (never another period).
            return HttpResponse(" ".join(e for errors in form.errors.values() for e in errors),
                                status=400, content_type="text/plain; charset=utf-8")
        if export == "returns":
            rows = reconciliation.reconciliation_rows(since=since, until=until, connection_id=connection_id)
            return stream_csv(returns_csv(rows), f"reconciliation-returns-{since}-{until}.csv")
        report = reconciliation.reconciliation_report(since=since, until=until, connection_id=connection_id)
        if export == "csv":
            return stream_csv(days_csv(report), f"reconciliation-{since}-{until}.csv")
        if not form.is_bound:  # show the period the report covers
            form = ReconciliationForm(initial={"since": since, "until": until})
        tasks = reconciliation.money_tasks(connection_id=connection_id)
        context = self.get_context_data(form=form, since=since, until=until, report=report, tasks=tasks, **kwargs)
        return self.render_to_response(context)

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        tasks = context["tasks"]
        base = {"since": context["since"].isoformat(), "until": context["until"].isoformat()}
        if self.request.GET.get("connection"):
            base["connection"] = self.request.GET["connection"]
        context.update(
            buckets=[(b, reconciliation.BUCKET_LABELS[b]) for b in reconciliation.BUCKETS],
            task_counts=reconciliation.money_task_counts(tasks),
            task_labels=reconciliation.TASK_LABELS,
            tasks_count=len(tasks),
            tasks_listed=tasks[:TASKS_LISTED],
            returns_url=reverse("finance_returns"),
            drill_base=base,
            export_days=urlencode({**base, "export": "csv"}),
            export_returns=urlencode({**base, "export": "returns"}),
        )
        context.update(registry.page_context("finance", request=self.request,
                                             portal_return_ids=[t.portal_return.pk for t in tasks[:TASKS_LISTED]]))
        return context


class FinanceReturnsView(RoleRequiredMixin, TemplateView):
    """The returns behind a reconciliation count: ``?bucket=&day=&connection=&currency=``
    over the same period, paged, with ``?export=csv``."""

    nav_name = "finance"
    template_name = "finance/returns.html"

    def get(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        form = ReconciliationForm(request.GET or None)
        since, until, connection = period(form)
        bucket = request.GET.get("bucket") if request.GET.get("bucket") in reconciliation.BUCKETS else None
        try:
            day = date.fromisoformat(request.GET.get("day") or "")
        except ValueError:
            day = None
        currency = request.GET.get("currency")
        rows = reconciliation.reconciliation_rows(
            since=since, until=until, connection_id=connection.pk if connection else None,
            currency=currency if currency is not None else None, bucket=bucket, day=day)
        if request.GET.get("export") == "csv":
            return stream_csv(returns_csv(rows), f"reconciliation-{bucket or 'all'}-{day or since}.csv")
        page = Paginator(rows, RETURNS_PER_PAGE).get_page(request.GET.get("page"))
        query = request.GET.copy()
        query.pop("page", None)
        context = self.get_context_data(
            rows=page.object_list, page=page, bucket=bucket, bucket_label=reconciliation.BUCKET_LABELS.get(bucket),
            day=day, currency=currency, connection=connection, since=since, until=until, count=len(rows),
            query=query.urlencode(), export_query=urlencode({**query.dict(), "export": "csv"}),
            expected=sum((r.expected or 0 for r in rows), reconciliation.ZERO),
            refunded=sum((r.refunded for r in rows), reconciliation.ZERO), **kwargs)
        return self.render_to_response(context)


def days_csv(report: reconciliation.Reconciliation):
    buckets = reconciliation.BUCKETS
    yield ["day", "connection", "currency", "returns", "received", *(f"{b}_count" for b in buckets),
           "expected_total", "tiktok_refunded_total", "difference",
           *(f"{b}_{what}" for b in buckets for what in ("expected", "tiktok_refunded"))]
    for row in report.rows:
        yield [row.day.isoformat(), row.connection_name, row.currency, row.total, row.received,
               *(row.buckets[b].count for b in buckets), _money(row.expected_total), _money(row.refunded_total),
               _money(row.difference),
               *(_money(getattr(row.buckets[b], what)) for b in buckets for what in ("expected", "refunded"))]


def returns_csv(rows: list[reconciliation.ReturnMoney]):
    yield ["day", "connection", "system", "portal_return", "tiktok_order", "tiktok_return", "currency", "received",
           "release", "expected", "tiktok_refunded", "difference", "bucket"]
    for r in rows:
        yield [r.day.isoformat(), r.connection_name, r.system, r.external_id, r.order_ref, r.return_ref, r.currency,
               "yes" if r.received else "no", r.release_state, _money(r.expected), _money(r.refunded),
               _money(r.difference), r.bucket]
