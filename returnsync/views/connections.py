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
from returnsync.services import NotRetryable, write_back_retry
from returnsync.tables import webhook_path_for
from returnsync.views.base import RoleRequiredMixin
from returnsync.views.history import history_context

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
            health_state=selectors.connection_health(connection),
            health_rule=selectors.HEALTH_RULE,
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
            first_poll=selectors.connection_first_poll(connection=connection),
        )
        context.setdefault("secrets_form", ConnectionSecretsForm(connection=connection))
        context.update(history_context(self.request, connection))
        return context


class ConnectionSecretsView(ConnectionMixin, View):
    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        connection = self.get_connection()
        form = ConnectionSecretsForm(request.POST, connection=connection)
        if not form.is_valid():
            view = ConnectionDetailView(request=request, kwargs=self.kwargs)
            context = view.get_context_data(connection=connection, secrets_form=form)
            return TemplateResponse(request, view.template_name, context, status=400)
        credentials = form.credentials()
        services.connection_set_secrets(
            connection=connection,
            credentials=credentials or None,
            webhook_secret=form.cleaned_data["webhook_secret"] or None,
            actor=request.user,
        )
        changed = [*(f.label for f in form.credential_fields() if f.name.removeprefix(form.PREFIX) in credentials),
                   *(["Webhook secret"] if form.cleaned_data["webhook_secret"] else [])]
        messages.success(
            request, f"Saved: {', '.join(changed)} (stored encrypted, never shown)." if changed
            else "Nothing entered: secrets kept as they were."
        )
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))


# The two switches that stop real work ask first (``confirm=yes``), saying what happens.
TOGGLE_CONFIRMATIONS = {
    ("enabled", "off"): ("Disable {connection}?",
                         "Its webhooks are refused (the sender retries later), polls and write-backs to it stop, and "
                         "returns stop moving until it is enabled again."),
    ("sandbox", "off"): ("Mark {connection} as live?",
                         "It is then treated as a real account: no sandbox traffic, no sandbox portal links. Check "
                         "its base URL and credentials point at the real system first."),
}
TOGGLE_DONE = {
    ("enabled", "on"): "enabled", ("enabled", "off"): "disabled",
    ("sandbox", "on"): "marked as sandbox", ("sandbox", "off"): "marked as live",
}


class ConnectionToggleView(ConnectionMixin, View):
    """POST ``field`` = ``enabled`` | ``sandbox`` and ``value`` = ``on`` | ``off``; disabling
    and going live need ``confirm=yes`` (without it, the page asks)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        connection = self.get_connection()
        field, value = request.POST.get("field"), request.POST.get("value")
        if field not in ("enabled", "sandbox") or value not in ("on", "off"):
            return HttpResponse("field must be enabled or sandbox, value on or off", status=400)
        question = TOGGLE_CONFIRMATIONS.get((field, value))
        if question and request.POST.get("confirm") != "yes":
            return TemplateResponse(request, "connections/confirm_toggle.html", {
                "connection": connection, "field": field, "value": value,
                "question": question[0].format(connection=connection), "consequence": question[1],
                "active_nav": self.nav_name,
            })
        services.connection_toggle(connection=connection, actor=request.user, **{field: value == "on"})
        messages.success(request, f"{connection}: {TOGGLE_DONE[(field, value)]}.")
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))


class ConnectionTestView(ConnectionMixin, View):
    """Runs the live test and answers with the result (htmx swaps it in place)."""

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        connection = self.get_connection()
        result = services.connection_test_run(connection=connection)
        if getattr(request, "htmx", False):
            connection.refresh_from_db()
            return TemplateResponse(
                request,
                "connections/_test_result.html",
                {"result": result, "connection": connection, "oob": True,
                 "health_state": selectors.connection_health(connection)},
            )
        (messages.success if result.ok else messages.error)(request, f"Test: {result.message}")
        return HttpResponseRedirect(reverse("connection_detail", args=[connection.pk]))


class SyncHealthView(RoleRequiredMixin, TemplateView):
    nav_name = "sync_health"
    template_name = "connections/sync_health.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        health = selectors.sync_health()
        context.update(
            health_rule=selectors.HEALTH_RULE,
            health=health,
            charts=selectors.sync_charts(connections=[h.connection for h in health]),
            chart_hours=selectors.CHART_HOURS,
            **registry.page_context("sync_health", request=self.request),
            window_hours=selectors.ERROR_RATE_WINDOW_HOURS,
            dead_letters=list(selectors.dead_letters()),
            failed_write_backs=list(selectors.write_backs_failed()),
            recent_calls=list(selectors.api_calls_recent(limit=RECENT_CALLS)),
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
        return HttpResponseRedirect(self.back_url(request))

    @staticmethod
    def back_url(request: HttpRequest) -> str:
        back = request.POST.get("next", "")
        if not back or not url_has_allowed_host_and_scheme(back, allowed_hosts={request.get_host()}):
            return reverse("sync_health")
        return back


class InboundEventRetryView(RetryView):
    """Processes the dead letter now and says what happened (applied, or failed again and
    why); the list it came from then shows the truth."""

    model = InboundEvent
    label = "inbound event"

    def post(self, request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        pk = self.kwargs["pk"]
        if not InboundEvent.objects.filter(pk=pk).exists():
            raise Http404("No such inbound event")
        try:
            outcome = services.inbound_event_retry_now(event_id=pk)
        except NotRetryable as exc:
            messages.warning(request, f"Not retried: {exc}.")
        else:
            (messages.success if outcome.ok else messages.error)(request, outcome.message)
        return HttpResponseRedirect(self.back_url(request))


class WriteBackRetryView(RetryView):
    model = WriteBack
    label = "write-back"
    retry = staticmethod(lambda pk: write_back_retry(write_back_id=pk))


class InboundEventDetailView(RoleRequiredMixin, TemplateView):
    """One inbound event as it arrived: its raw body and headers (credentials and signatures
    redacted), what processing said, and Retry for a dead letter."""

    nav_name = "inbound_list"
    template_name = "connections/inbound_detail.html"

    def get_context_data(self, **kwargs: Any) -> dict[str, Any]:
        context = super().get_context_data(**kwargs)
        try:
            event = selectors.inbound_event_get(pk=self.kwargs["pk"])
        except InboundEvent.DoesNotExist:
            raise Http404("No such inbound event") from None
        body, pretty, cut = selectors.inbound_event_body(event)
        context.update(event=event, headers=selectors.inbound_event_headers(event), body=body, body_pretty=pretty,
                       body_cut=cut, body_bytes=len(bytes(event.body)), shown_max=selectors.BODY_SHOWN_MAX)
        return context
