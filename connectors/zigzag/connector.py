"""ZigZag as the core sees it: one ``Connector`` description, registered by the app."""
from __future__ import annotations

from connectors.zigzag import mapping, services, sync, webhooks
from returnsync import refund_gate
from returnsync.choices import System
from returnsync.registry import (
    Connector,
    ConnectorRole,
    CredentialField,
    OptionSpec,
    PollSpec,
    SandboxSpec,
    lazy,
)


def _sandbox() -> SandboxSpec:
    from connectors.zigzag.sandbox import scenario

    return SandboxSpec(urls="connectors.zigzag.sandbox.urls", traffic_tick=scenario.traffic_tick,
                       deliver_webhooks=scenario.deliver_webhooks)


OPTIONS = (
    *refund_gate.PORTAL_OPTIONS,
    OptionSpec("tiktok_connection_id", None, "The TikTok connection whose returns this ZigZag account handles "
                                             "(default: the only enabled one)."),
    OptionSpec("paths", mapping.DEFAULTS["paths"], "API paths (merged over the defaults): token, returns, return."),
    OptionSpec("events", mapping.DEFAULTS["events"], "ZigZag's webhook event names per kind of event."),
    OptionSpec("grades", {}, "Extra ZigZag grade values → sellable, damaged, defective, wrong_item, missing."),
    OptionSpec("status_map", {}, "Extra or replaced ZigZag statuses → canonical stage."),
    OptionSpec("mirror_return_types", mapping.DEFAULTS["mirror_return_types"],
               "TikTok return types that get a ZigZag return (they send a parcel back)."),
    OptionSpec("mirror_stages", [str(s) for s in mapping.DEFAULTS["mirror_stages"]],
               "TikTok stages in which a return is mirrored."),
    OptionSpec("signature_header", mapping.DEFAULTS["signature_header"], "The header carrying the webhook signature."),
    OptionSpec("token_margin_seconds", mapping.DEFAULTS["token_margin_seconds"],
               "Re-issue the 30-minute JWT this long before it expires."),
    OptionSpec("portal_url_template", "", "The buyer's return-portal link ({order_id}, {zip}, {base_url})."),
    OptionSpec("webhook_max_age_hours", webhooks.MAX_AGE_HOURS,
               "A signed webhook whose occurred_at is older than this is refused (ZigZag re-sends for a week)."),
    OptionSpec("read_timeout_seconds", 30, "How long a call waits for ZigZag's answer before it is retried."),
    OptionSpec("initial_lookback_days", None, "How far back the first poll reads returns (empty: everything)."),
)


def connector(*, sandbox: bool) -> Connector:
    return Connector(
        kind=System.ZIGZAG,
        slug="zigzag",
        role=ConnectorRole.RETURNS_PORTAL,
        label="ZigZag",
        status_table=mapping.STATUS_TABLE,
        credential_fields=(
            CredentialField("username", "Username", "The ZigZag API user.", secret=False),
            CredentialField("password", "Password", "Exchanged for a 30-minute JWT at POST /token."),
        ),
        options=OPTIONS,
        client=lazy("connectors.zigzag.client.ZigZagClient"),
        webhook=webhooks.WEBHOOK,
        process_event=webhooks.process_event,
        poll=PollSpec(stream=sync.STREAM, run=sync.poll_window, initial_lookback=None),
        write_back_runners=services.WRITE_BACK_RUNNERS,
        connection_test=services.connection_test,
        mirror=services.mirror_queue,
        urls="connectors.zigzag.urls",
        sandbox=_sandbox() if sandbox else None,
    )
