"""Re-read TikTok Shop returns updated in a date range (does not move the live watermark)."""
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from connectors.tiktok_shop.sync import backfill_returns
from returnsync.choices import System
from returnsync.models import Connection


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not an ISO date/time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Backfill TikTok Shop returns whose update_time is in [--since, --until)."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, required=True)
        parser.add_argument("--since", required=True, help="ISO date/time, e.g. 2026-11-01 or 2026-11-01T00:00Z")
        parser.add_argument("--until", required=True, help="ISO date/time (exclusive)")

    def handle(self, *args, **options):
        connection = Connection.objects.filter(kind=System.TIKTOK_SHOP, pk=options["connection"]).first()
        if connection is None:
            raise CommandError(f"no TikTok connection {options['connection']}")
        since, until = _when(options["since"]), _when(options["until"])
        if since >= until:
            raise CommandError("--since must be before --until")
        run = backfill_returns(connection=connection, since=since, until=until)
        self.stdout.write(f"{connection}: {run.counts}")
