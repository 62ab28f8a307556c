"""Poll TikTok Shop returns now (every enabled TikTok connection, or one)."""
from django.core.management.base import BaseCommand, CommandError

from connectors.tiktok_shop.sync import poll_returns
from returnsync.choices import System
from returnsync.models import Connection


class Command(BaseCommand):
    help = "Poll TikTok Shop returns updated since each connection's watermark."

    def add_arguments(self, parser):
        parser.add_argument("--connection", type=int, help="Connection id (default: all enabled TikTok ones)")

    def handle(self, *args, **options):
        qs = Connection.objects.filter(kind=System.TIKTOK_SHOP, is_enabled=True)
        if options["connection"]:
            qs = Connection.objects.filter(kind=System.TIKTOK_SHOP, pk=options["connection"])
            if not qs.exists():
                raise CommandError(f"no TikTok connection {options['connection']}")
        failed = False
        for connection in qs:
            try:
                run = poll_returns(connection=connection)
            except Exception as exc:
                failed = True
                self.stderr.write(f"{connection}: failed: {exc}")
                continue
            self.stdout.write(f"{connection}: {run.counts}")
        if failed:
            raise CommandError("some polls failed (see the sync runs)")
