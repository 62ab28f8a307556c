"""Admin: one connection's page (write-only secrets, live "test connection", webhook URL,
enable/disable, sandbox flag), sync health across connections, and the retry buttons for
dead letters and failed write-backs (``returnsync.services`` retries, the same path the
exception page uses)."""

from __future__ import annotations

from typing import Any

from django.contrib import messages
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import reverse
from django.utils.http import url_has_allowed_host_and_scheme
from django.views.generic import TemplateView, View

from returnsync import registry, selectors, services
from returnsync.forms import ConnectionSecretsForm
from returnsync.models import Connection, InboundEvent, WriteBack
from returnsync.services import NotRetryable, inbound_event_retry, write_back_retry
from returnsync.tables import webhook_path_for
from returnsync.views.base import RoleRequiredMixin

RECENT_CALLS = 20


class ConnectionMixin(RoleRequiredMixin):
    nav_name = "connection_list"

    def get_connection(self) -> Connection:
        return get_object_or_404(Connection, pk=self.kwargs["pk"])


class ConnectionDetailView(ConnectionMixin, TemplateView):
    template_name = "connections/detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        connection = kwargs.get("connection") or self.get_connection()
        health = next(h for h in selectors.sync_health() if h.connection.pk == connection.pk)
        context.update(
            connection=connection,
            health=health,
            credential_keys=sorted((connection.credentials or {}).keys()),
            has_webhook_secret=bool(connection.webhook_secret),
            webhook_url=(self.request.build_absolute_uri(path) if (path := webhook_path_for(connection))
                         else ""),
            portal_url_template=(connection.options or {}).get(
                selectors.PORTAL_URL_TEMPLATE_OPTION, ""
            ),
            sandbox_portal_url_template=selectors.SANDBOX_PORTAL_URL_TEMPLATE,
            recent_calls=list(
                selectors.api_calls_recent(connection_id=connection.pk, limit=RECENT_CALLS)
            ),
            options=selectors.connection_options(connection=connection),
            credential_fields=selectors.connection_credentials(connection=connection),
            first_poll=selectors.connection_first_poll(connection=connection),
        )
        context.setdefault("secrets_form", ConnectionSecretsForm())
        return context


class ConnectionSecretsView(ConnectionMixin, View):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        connection = self.get_connection()
        form = ConnectionSecretsForm(request.POST)
        if not form.is_valid():
            view = ConnectionDetailView(request=request, kwargs=self.kwargs)
            context = view.get_context_data(connection=connection, secrets_form=form)
            return TemplateResponse(request, view.template_name, context, status=400)
        services.connection_set_secrets(
            connection=connection,
            credentials=form.cleaned_data["credentials"] or None,
            webhook_secret=form.cleaned_data["webhook_secret"] or None,
        )
        changed = bool(form.cleaned_data["credentials"] or form.cleaned_data["webhook_secret"])
        messages.success(
            request, "Secrets saved." if changed else "Nothing entered: secrets kept as they were."
        )
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))


class ConnectionToggleView(ConnectionMixin, View):
    """POST ``field`` = ``enabled`` | ``sandbox`` and ``value`` = ``on`` | ``off``."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        connection = self.get_connection()
        field, value = request.POST.get("field"), request.POST.get("value")
        if field not in ("enabled", "sandbox") or value not in ("on", "off"):
            return HttpResponse("field must be enabled or sandbox, value on or off", status=400)
        services.connection_toggle(connection=connection, **{field: value == "on"})
        messages.success(request, f"{connection}: {field} {value}.")
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))


class ConnectionTestView(ConnectionMixin, View):
    """Runs the live test and answers with the result (htmx swaps it in place)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        connection = self.get_connection()
        result = services.connection_test_run(connection=connection)
        if getattr(request, "htmx", False):
            return TemplateResponse(
                request,
                "connections/_test_result.html",
                {"result": result, "connection": connection},
            )
        (messages.success if result.ok else messages.error)(request, f"Test: {result.message}")
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))


class SyncHealthView(RoleRequiredMixin, TemplateView):
    nav_name = "sync_health"
    template_name = "connections/sync_health.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        context.update(
            health=selectors.sync_health(),
            window_hours=selectors.ERROR_RATE_WINDOW_HOURS,
            dead_letters=list(selectors.dead_letters()),
            failed_write_backs=list(selectors.write_backs_failed()),
            recent_calls=list(selectors.api_calls_recent(limit=RECENT_CALLS)),
            **registry.page_context("sync_health", request=self.request),
        )
        return context


class RetryView(RoleRequiredMixin, View):
    """Retry one failed row; the answer is a message on the page it came from."""

    nav_name = "sync_health"
    model: type
    retry = staticmethod(lambda pk: None)
    label = ""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pk = self.kwargs["pk"]
        if not self.model.objects.filter(pk=pk).exists():
            raise Http404(f"No such {self.label}")
        try:
            self.retry(pk)
        except NotRetryable as exc:
            messages.warning(request, f"Not retried: {exc}.")
        else:
            messages.success(request, f"{self.label.capitalize()} {pk} queued again.")
        back = request.POST.get("next", "")
        if not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            back = reverse("sync_health")
        return HttpResponseRedirect(back or reverse("sync_health"))


class InboundEventRetryView(RetryView):
    model = InboundEvent
    label = "inbound event"
    retry = staticmethod(lambda pk: inbound_event_retry(event_id=pk))


class WriteBackRetryView(RetryView):
    model = WriteBack
    label = "write-back"
    retry = staticmethod(lambda pk: write_back_retry(write_back_id=pk))
