"""Re-read what changed in a date range on one connection (does not move the live watermark)."""
from datetime import UTC, datetime

from django.core.management.base import BaseCommand, CommandError

from connectors.polling import backfill_run
from returnsync import registry
from returnsync.models import Connection


def _when(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(text)
    except ValueError as exc:
        raise CommandError(f"not an ISO date/time: {text!r}") from exc
    return value if value.tzinfo else value.replace(tzinfo=UTC)


class Command(BaseCommand):
    help = "Backfill one connection's records updated in [--since, --until)."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, required=True)
        parser.add_argument("--since", required=True, help="ISO date/time, e.g. 2026-11-01 or 2026-11-01T00:00Z")
        parser.add_argument("--until", required=True, help="ISO date/time (exclusive)")

    def handle(self, *args, **options):
        kinds = [c.kind for c in registry.connectors() if c.poll is not None]
        connection = Connection.objects.filter(kind__in=kinds, pk=options["connection"]).first()
        if connection is None:
            raise CommandError(f"no polled connection {options['connection']}")
        since, until = _when(options["since"]), _when(options["until"])
        if since >= until:
            raise CommandError("--since must be before --until")
        run = backfill_run(connection=connection, since=since, until=until)
        self.stdout.write(f"{connection}: {run.counts}")
