"""TikTok Shop as the core sees it: one ``Connector`` description, registered by the app."""
from __future__ import annotations

from datetime import timedelta

from connectors.tiktok_shop import mapping, services, sync, webhooks
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
    from connectors.tiktok_shop.sandbox import traffic

    return SandboxSpec(urls="connectors.tiktok_shop.sandbox.urls", traffic_tick=traffic.traffic_tick,
                       deliver_webhooks=traffic.deliver_webhooks, parcel_delivered=traffic.parcel_delivered,
                       catalog=traffic.catalog, held_return_ids=traffic.held_return_ids)


def connector(*, sandbox: bool) -> Connector:
    return Connector(
        kind=System.TIKTOK_SHOP,
        slug="tiktok",
        role=ConnectorRole.MARKETPLACE,
        label="TikTok Shop",
        status_table=mapping.STATUS_TABLE,
        credential_fields=(
            CredentialField("app_key", "App key", "The app's key from TikTok Shop Partner Center.", secret=False),
            CredentialField("app_secret", "App secret", "Signs every call and every webhook."),
            CredentialField("access_token", "Access token", "Set by authorizing the shop (or pasted).",
                            required=False),
            CredentialField("refresh_token", "Refresh token", "Set by authorizing the shop (or pasted).",
                            required=False),
        ),
        options=(
            OptionSpec("auth_base_url", "https://auth.tiktok-shops.com", "Host of the token calls."),
            OptionSpec("shop_cipher", "", "The shop's cipher, found when the shop is authorized."),
            OptionSpec("shop_id", "", "Which authorized shop to use when there are several."),
            OptionSpec("retry_codes", [], "Extra TikTok error codes to treat as retryable."),
            OptionSpec("initial_lookback_days", 30, "How far back the first poll reads returns."),
            OptionSpec("read_timeout_seconds", 30, "How long a call waits for TikTok's answer before it is retried."),
            OptionSpec("webhook_max_age_hours", webhooks.MAX_AGE_HOURS,
                       "A signed webhook whose timestamp is older than this is refused (TikTok retries for ~16 h)."),
        ),
        client=lazy("connectors.tiktok_shop.client.TikTokClient"),
        webhook=webhooks.WEBHOOK,
        process_event=webhooks.process_event,
        poll=PollSpec(stream=sync.RETURNS_STREAM, run=sync.poll_window, overlap=timedelta(minutes=5),
                      initial_lookback=timedelta(days=30)),
        write_back_runners=services.WRITE_BACK_RUNNERS,
        jobs_due=services.inventory_due,
        connection_test=services.connection_test,
        authorize=services.connection_authorize,
        authorize_label="TikTok authorization code",
        marketplace=services.MARKETPLACE,
        sandbox=_sandbox() if sandbox else None,
    )
