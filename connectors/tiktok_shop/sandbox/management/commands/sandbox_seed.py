"""Seed the TikTok Shop sandbox with a deterministic scenario and connect ReturnSync to it."""
from django.core.management.base import BaseCommand

from connectors.tiktok_shop.sandbox import api, scenario

DEFAULT_CONNECTION = "TikTok Shop (sandbox)"


class Command(BaseCommand):
    help = ("Create sandbox orders (incl. bundles) and returns across every TikTok status, "
            "deterministically for a seed, and create/reuse the Connection pointing at the sandbox.")

    def add_arguments(self, parser):
        parser.add_argument("--orders", type=int, default=200)
        parser.add_argument("--seed", type=int, default=1)
        parser.add_argument("--connection-name", default=DEFAULT_CONNECTION)
        parser.add_argument("--server-url", default="http://127.0.0.1:8000",
                            help="Where this project (and so the sandbox) is served.")
        parser.add_argument("--webhook-base-url", default=None)
        parser.add_argument("--now", type=int, default=None,
                            help="Anchor unix time (default: now). Same seed + same --now = identical data.")
        parser.add_argument("--webhooks", action="store_true",
                            help="Also queue webhooks for the seeded history (default: polling picks it up).")

    def handle(self, *args, orders, seed, connection_name, server_url, webhook_base_url, now, webhooks, **kw):
        connection = api.connect(name=connection_name, server_url=server_url, webhook_base_url=webhook_base_url)
        counts = scenario.seed_scenario(connection, orders=orders, seed=seed, now=now, notify=webhooks)
        self.stdout.write(self.style.SUCCESS(
            f"Sandbox seeded (seed {seed}): {counts['orders']} new orders, {counts['returns']} new returns; "
            f"connection '{connection.name}' (id {connection.pk}) -> {connection.base_url}"))
