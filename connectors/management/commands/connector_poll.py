"""Poll now: every enabled connection that polls, or one."""
from django.core.management.base import BaseCommand, CommandError

from connectors.polling import poll_run
from returnsync import registry
from returnsync.models import Connection


class Command(BaseCommand):
    help = "Poll each connection for what changed since its watermark (the scheduled poll, run now)."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="Connection id (default: every enabled one that polls)")

    def handle(self, *args, **options):
        kinds = [c.kind for c in registry.connectors() if c.poll is not None]
        qs = Connection.objects.filter(kind__in=kinds, is_enabled=True)
        if options["connection"]:
            qs = Connection.objects.filter(kind__in=kinds, pk=options["connection"])
            if not qs.exists():
                raise CommandError(f"no polled connection {options['connection']}")
        failed = False
        for connection in qs:
            try:
                run = poll_run(connection=connection)
            except Exception as exc:
                failed = True
                self.stderr.write(f"{connection}: failed: {exc}")
                continue
            self.stdout.write(f"{connection}: {run.counts}")
        if failed:
            raise CommandError("some polls failed (see the sync runs)")
