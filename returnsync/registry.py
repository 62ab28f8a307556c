"""The only seam between the core and the systems it talks to.

Core (``returnsync``) never imports a connector or the exception engine. Each of them
declares what it offers from its ``AppConfig.ready`` the way a NetBox plugin declares
itself in its ``PluginConfig``:

- a connector registers one :class:`Connector` description (``register``): its kind and
  role, its status table, credential fields and options, and the callables the shared
  plumbing runs (webhook authentication and parsing, inbound-event processing, the poll,
  write-back runners, the connection test) plus, for the marketplace, the operations the
  return lifecycle needs (:class:`Marketplace`);
- the shared connector plumbing (``connectors``) registers how a stored inbound event
  or a write-back is queued for a run (``plumbing_register``), so core services such as
  "retry this dead letter" need no import of it;
- anyone may listen to changed returns (``change_listener_register``), add schedules
  (``schedule_setup_register``), navigation (``nav_register``) and context to a core
  page (``page_context_register``: the exception engine adds its cases to the home page,
  the return page and finance).

Adding a system is adding a folder under ``connectors/`` whose app registers its
``Connector``, and one line in ``INSTALLED_APPS`` (see ``connectors/README.md``).
"""
from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from django.db import models

if TYPE_CHECKING:
    from returnsync.choices import Stage
    from returnsync.models import Connection, WriteBack

logger = logging.getLogger(__name__)


class ConnectorRole(models.TextChoices):
    MARKETPLACE = "marketplace", "Marketplace"
    RETURNS_PORTAL = "returns_portal", "Returns portal"
    ORDER_HUB = "order_hub", "Order hub"


@dataclass(frozen=True)
class CredentialField:
    """One credential a connection of this system needs (stored encrypted, never shown)."""

    name: str
    label: str
    help: str = ""
    secret: bool = True
    required: bool = True


@dataclass(frozen=True)
class OptionSpec:
    """One non-secret setting in ``Connection.options``, with its default and what it means."""

    name: str
    default: Any
    help: str


@dataclass(frozen=True)
class WebhookInfo:
    """What the receiver stores about one authenticated delivery."""

    event_type: str
    dedupe_id: str = ""  # the provider's event id; "" → the body's SHA-256
    subject_ref: str = ""  # the return/order id it is about (lookup, dead-letter evidence)
    process: bool = True  # False: a type we do not act on, stored as ignored and acknowledged


@dataclass(frozen=True)
class WebhookSpec:
    """How a system's webhooks are received (the receiver itself is shared).

    ``authenticate(connection, request, raw_body) -> bool``: False is a 401 and nothing is
    stored. ``parse(connection, payload) -> WebhookInfo`` reads a JSON object; a
    ``ValueError`` makes the delivery a dead letter (400). ``secret_headers(connection)``
    names the headers never stored (signatures are replayable credentials).

    Freshness: ``sent_at(connection, payload)`` is when the sender says it sent (or the
    event happened), None when the body does not say; a signed body older than
    ``max_age(connection)`` (or more than ``WEBHOOK_FUTURE_SKEW`` ahead) is refused with a
    400 and kept as a dead letter, so a captured body cannot be replayed for ever. The
    window must cover the sender's own re-delivery schedule.
    """

    authenticate: Callable[..., bool]
    parse: Callable[..., WebhookInfo]
    secret_headers: Callable[[Connection], Iterable[str]] = lambda connection: ()
    ack: str = "accepted"  # the message of a 200 for a new delivery
    sent_at: Callable[..., datetime | None] = lambda connection, payload: None
    max_age: Callable[[Connection], timedelta] = lambda connection: timedelta(days=1)


@dataclass(frozen=True)
class PollSpec:
    """A connector's incremental read. ``run(connection=, window=, client=) -> dict``
    reads what changed in ``[window.since, window.until)`` and calls
    ``window.advance(watermark)`` as data is committed; the shared poll task does the
    bookkeeping (SyncRun row, cursor, overlap, connection health)."""

    stream: str
    run: Callable[..., dict]
    overlap: timedelta = timedelta(minutes=5)
    initial_lookback: timedelta | None = timedelta(days=30)  # None: the first poll reads everything


@dataclass(frozen=True)
class RunResult:
    """What a write-back runner reports on success (``summary`` goes on the timeline)."""

    summary: str
    api_code: str = ""  # the system's answer code worth keeping ("0", "25020011", ...)
    portal_return: Any = None  # the portal record a run created, if any


@dataclass(frozen=True)
class ActionRunner:
    """How one write-back action runs.

    ``run(write_back=, client=) -> RunResult`` is called by the shared runner (claim,
    backoff, dead, timeline summary) and raises on failure (an exception's ``retryable``
    says whether a later attempt may succeed). ``failed(write_back) -> str`` and
    ``gave_up`` word the timeline line of a failed attempt. An action with its own job
    (a stock adjustment claims its own row) gives ``enqueue(write_back=)`` instead of
    ``run``."""

    run: Callable[..., RunResult] | None = None
    failed: Callable[..., str] = lambda write_back: f"{write_back.get_action_display()} failed"
    gave_up: str = "gave up"
    enqueue: Callable[..., None] | None = None


@dataclass(frozen=True)
class SandboxSpec:
    """The fake server of a system, served under ``/sandbox/`` when ``SANDBOX_ENABLED``.

    - ``urls``: dotted path of its urlconf;
    - ``traffic_tick(connection, rng=) -> dict``: one step of simulated life, called by the
      ``sandbox_traffic`` loop for every enabled sandbox connection of the kind (marketplaces
      first, then portals, then order hubs), followed by ``deliver_webhooks(connection) -> int``;
    - a marketplace's sandbox also tells the others about the simulated world:
      ``parcel_delivered(connection, return_id, tracking_number)`` (the carrier delivered a
      return parcel: the marketplace now waits for the seller's receipt decision),
      ``catalog(connection) -> {"warehouses": [...], "bundles": [{"seller_sku", "name",
      "components": [(seller_sku, quantity), ...]}]}`` and ``held_return_ids(connection)``
      (returns the fault scenario keeps in the state it gave them: traffic leaves them alone).
    """

    urls: str = ""
    traffic_tick: Callable[..., dict] | None = None
    deliver_webhooks: Callable[..., int] | None = None
    parcel_delivered: Callable[..., None] | None = None
    catalog: Callable[..., dict] | None = None
    held_return_ids: Callable[..., Iterable[str]] | None = None


class Marketplace(Protocol):
    """What the return lifecycle asks of the marketplace (TikTok Shop implements it)."""

    def needs_parcel(self, marketplace_return) -> bool:
        """Does this return send a parcel back (so a receipt means anything)?"""

    def refund_release(self, *, marketplace_return, actor=None) -> WriteBack:
        """Queue the decision that releases the full refund after receipt (idempotent)."""

    def refund_release_sent(self, marketplace_return) -> bool:
        """Has a decision that releases money on this return been queued or sent already?"""

    def refund_release_resend(self, *, marketplace_return, actor=None) -> WriteBack:
        """Send the release decision again (the marketplace answered success and recorded
        nothing): a new attempt under a new key; the marketplace refuses a second approval."""

    def partial_refund_offer_refusal(self, *, marketplace_return, amount) -> str:
        """Why the marketplace would not take a partial-refund offer of ``amount`` now ("" = it would)."""

    def partial_refund_offer(self, *, marketplace_return, amount, currency: str, actor=None) -> WriteBack:
        """Offer the buyer a partial refund they must accept (idempotent per amount)."""

    def request_decisions(self, marketplace_return) -> dict[str, str]:
        """The decisions a person may take on the request now: ``{"approve": ..., "reject": ...}``."""

    def reject_reasons(self, marketplace_return) -> list[tuple[str, str]]:
        """(name, text) of the reasons the marketplace accepts for a reject now (asks its API)."""

    def request_decide(self, *, marketplace_return, decision: str, reject_reason: str = "", comment: str = "",
                       actor=None) -> WriteBack:
        """Queue a person's decision on the request (idempotent per decision)."""

    def seller_center_links(self, marketplace_return) -> dict[str, str]:
        """Links to the order and the return in the marketplace's own back office."""

    def stock_adjust(self, *, connection, seller_sku: str, sku_id: str, product_id: str, warehouse_id: str,
                     delta: int, idempotency_key: str, portal_return_line=None) -> Any:
        """Queue a stock change for one SKU at one warehouse (idempotent on the key)."""

    def stock_adjustment_run(self, *, adjustment_id: int) -> Any:
        """Run one queued stock change now (it claims its own row)."""


@dataclass(frozen=True)
class Connector:
    """One external system, as the core and the shared plumbing see it."""

    kind: str  # a returnsync.choices.System value
    slug: str  # its URL segment: /webhooks/<slug>/<webhook_slug>/
    role: ConnectorRole
    label: str
    status_table: Mapping[str, Stage] = field(default_factory=dict)
    credential_fields: tuple[CredentialField, ...] = ()
    options: tuple[OptionSpec, ...] = ()
    client: Callable[[Connection], Any] | None = None
    webhook: WebhookSpec | None = None
    # (event=InboundEvent, client=...) -> an InboundStatus (processed or ignored); raises on failure.
    process_event: Callable[..., str] | None = None
    poll: PollSpec | None = None
    write_back_runners: Mapping[str, ActionRunner] = field(default_factory=dict)
    # (now=) -> int: enqueue the due runs of jobs an ActionRunner runs itself (stock adjustments).
    jobs_due: Callable[..., int] | None = None
    # (connection=) -> a sentence; raises with a readable message when the connection does not work.
    connection_test: Callable[..., str] | None = None
    # (connection=, marketplace_return=) -> WriteBack: create this portal's record for a TikTok
    # return (a portal that mirrors TikTok returns, like ZigZag; idempotent).
    mirror: Callable[..., Any] | None = None
    # (connection=, code=) -> a sentence: exchange an authorization code a person pasted.
    authorize: Callable[..., str] | None = None
    authorize_label: str = "Authorization code"
    marketplace: Marketplace | None = None
    # (connection=) -> {"used": int, "limit": int, "period": str} | None: the API quota the
    # system reports (sync health charts it); None where the system reports none.
    quota: Callable[..., dict | None] | None = None
    urls: str = ""  # dotted path of the connector's own pages, mounted under /<slug>/
    sandbox: SandboxSpec | None = None

    def option(self, connection, name: str) -> Any:
        """``connection.options[name]`` or this connector's default for it."""
        options = (connection.options or {}) if connection is not None else {}
        if name in options:
            return options[name]
        for spec in self.options:
            if spec.name == name:
                return spec.default
        raise KeyError(f"{self.kind} has no option {name!r}")


def lazy(dotted: str) -> Callable[..., Any]:
    """A callable importing ``dotted`` on first use (a client factory that does not load the
    client module when the app is registered)."""
    def call(*args, **kwargs):
        from django.utils.module_loading import import_string

        return import_string(dotted)(*args, **kwargs)

    call.__qualname__ = f"lazy({dotted})"
    return call


class UnknownConnector(LookupError):
    pass


_CONNECTORS: dict[str, Connector] = {}


def register(connector: Connector) -> Connector:
    existing = _CONNECTORS.get(connector.kind)
    if existing is not None and existing != connector:
        raise ValueError(f"connector {connector.kind!r} registered twice")
    if any(c.slug == connector.slug and c.kind != connector.kind for c in _CONNECTORS.values()):
        raise ValueError(f"connector slug {connector.slug!r} is taken")
    _CONNECTORS[connector.kind] = connector
    return connector


def connector(kind: str) -> Connector:
    try:
        return _CONNECTORS[kind]
    except KeyError:
        raise UnknownConnector(f"no connector is installed for {kind!r}") from None


def connector_or_none(kind: str) -> Connector | None:
    return _CONNECTORS.get(kind)


def connectors(*, role: ConnectorRole | None = None) -> list[Connector]:
    return [c for c in _CONNECTORS.values() if role is None or c.role == role]


def kinds(*, role: ConnectorRole) -> tuple[str, ...]:
    return tuple(c.kind for c in connectors(role=role))


def sandbox_of(connection) -> SandboxSpec:
    """The sandbox hooks of a connection's system (``UnknownConnector`` without a sandbox)."""
    spec = connector(connection.kind).sandbox
    if spec is None:
        raise UnknownConnector(f"{connection.kind} has no sandbox installed")
    return spec


def marketplace_for(connection) -> Marketplace:
    """The marketplace operations of a marketplace connection's system."""
    ops = connector(connection.kind).marketplace
    if ops is None:
        raise UnknownConnector(f"{connection.kind} is not a marketplace")
    return ops


# --- plumbing registered by the shared connector code ----------------------------------


@dataclass
class Plumbing:
    # (event_id=) -> None: queue processing of one stored inbound event (after commit).
    inbound_enqueue: Callable[..., None] | None = None
    # (write_back=) -> None: queue one run of a write-back (after commit).
    write_back_enqueue: Callable[..., None] | None = None
    # (event_id=) -> InboundEvent: process one stored event now, in this process (a person's
    # Retry waits for the outcome); never raises for the event's own failure.
    inbound_process: Callable[..., Any] | None = None


PLUMBING = Plumbing()


def plumbing_register(**hooks: Callable) -> None:
    for name, hook in hooks.items():
        if not hasattr(PLUMBING, name):
            raise TypeError(f"unknown plumbing hook {name!r}")
        setattr(PLUMBING, name, hook)


# --- listeners, schedules, navigation, page context ------------------------------------

_CHANGE_LISTENERS: list[Callable[..., Any]] = []
_SCHEDULE_SETUP: list[Callable[[], None]] = []
_NAV: list[Any] = []
_PAGE_CONTEXT: dict[str, list[Callable[..., dict]]] = {}


def _add_once(items: list, item) -> None:
    if item not in items:
        items.append(item)


def change_listener_register(listener: Callable[..., Any]) -> None:
    """``listener(order_refs=set[str])`` runs after commit whenever returns of these TikTok
    orders changed (see ``returnsync.services.changes_notify``), in registration order."""
    _add_once(_CHANGE_LISTENERS, listener)


def change_listeners() -> list[Callable[..., Any]]:
    return list(_CHANGE_LISTENERS)


def schedule_setup_register(setup: Callable[[], None]) -> None:
    """An idempotent function creating django-q2 schedules (``manage.py schedules_ensure``)."""
    _add_once(_SCHEDULE_SETUP, setup)


def schedules_ensure_all() -> list[str]:
    for setup in _SCHEDULE_SETUP:
        setup()
    return [f"{s.__module__}.{s.__qualname__}" for s in _SCHEDULE_SETUP]


def nav_register(*items) -> None:
    """Navigation entries (``returnsync.roles.NavItem``) of pages an app adds."""
    for item in items:
        _add_once(_NAV, item)


def nav_items() -> list:
    return list(_NAV)


def page_context_register(page: str, provider: Callable[..., dict]) -> None:
    """``provider(request=, **page_objects) -> dict`` adds to a core page's context
    (``home``, ``return_detail``, ``finance``)."""
    _add_once(_PAGE_CONTEXT.setdefault(page, []), provider)


def page_context(page: str, **kwargs) -> dict:
    context: dict = {}
    for provider in _PAGE_CONTEXT.get(page, ()):
        context.update(provider(**kwargs))
    return context


# --- money tolerance ------------------------------------------------------------------------
# How far two refund figures may differ and still agree. The refund gate (core) and the
# refund-mismatch rule (the exception engine, where admins set it) must judge alike: the
# exception engine registers the provider; without it the defaults below apply.

DEFAULT_TOLERANCE_AMOUNT = "0.50"
DEFAULT_TOLERANCE_PERCENT = "1.0"
_TOLERANCE: list[Callable[[], tuple[str, str]]] = []


def tolerance_provider_register(provider: Callable[[], tuple[str, str]]) -> None:
    """``provider() -> (amount, percent)``: the accepted difference between two refund figures."""
    _TOLERANCE[:] = [provider]


def tolerance_settings() -> tuple[str, str]:
    """(fixed amount, percent) as configured (one read: call once per pass, not per row)."""
    return _TOLERANCE[0]() if _TOLERANCE else (DEFAULT_TOLERANCE_AMOUNT, DEFAULT_TOLERANCE_PERCENT)


def tolerance_for(amount, *, fixed, percent) -> Any:
    """The accepted difference for a refund of ``amount``: the larger of the fixed amount and
    the percentage of ``amount``."""
    from decimal import Decimal

    base = abs(Decimal(str(amount or 0)))
    return max(Decimal(str(fixed)), (base * Decimal(str(percent)) / 100).quantize(Decimal("0.01")))


def money_tolerance(amount) -> Any:
    fixed, percent = tolerance_settings()
    return tolerance_for(amount, fixed=fixed, percent=percent)
