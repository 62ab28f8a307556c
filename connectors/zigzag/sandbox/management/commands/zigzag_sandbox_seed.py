"""Connect ReturnSync to the ZigZag sandbox (after sandbox_seed): connection, warehouse
mapping, bundle mappings. Idempotent."""
from django.core.management.base import BaseCommand, CommandError

from connectors.tiktok_shop.sandbox.management.commands.sandbox_seed import (
    DEFAULT_CONNECTION as TIKTOK_NAME,
)
from connectors.zigzag.sandbox import scenario


class Command(BaseCommand):
    help = "Create/reuse the ZigZag sandbox connection mirroring the TikTok sandbox connection."

    def add_arguments(self, parser):
        parser.add_argument("--server-url", default="http://127.0.0.1:8000")
        parser.add_argument("--webhook-base-url", default=None)
        parser.add_argument("--connection-name", default=scenario.DEFAULT_CONNECTION)
        parser.add_argument("--tiktok-connection-name", default=TIKTOK_NAME)

    def handle(self, *args, server_url, webhook_base_url, connection_name, tiktok_connection_name, **kw):
        try:
            conn = scenario.seed(server_url=server_url, webhook_base_url=webhook_base_url, name=connection_name,
                                 tiktok_connection_name=tiktok_connection_name)
        except ValueError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(self.style.SUCCESS(
            f"ZigZag sandbox connected: '{conn.name}' (id {conn.pk}) -> {conn.base_url}, "
            f"mirroring TikTok connection {conn.options.get('tiktok_connection_id')}"))
