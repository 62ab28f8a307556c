"""Run exception detection now: ``manage.py detect_exceptions --full`` or ``--order <id> ...``."""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from exceptions_app.tasks import detect_full, detect_incremental


class Command(BaseCommand):
    help = "Run a detection pass now (the full pass, or the given TikTok orders) and print its counts."

    def add_arguments(self, parser):
        parser.add_argument("--full", action="store_true", help="Every return (the scheduled pass).")
        parser.add_argument("--order", action="append", default=[], metavar="ORDER_ID",
                            help="A TikTok order id (repeat for several).")
        parser.add_argument("--json", action="store_true", dest="as_json", help="Print the counts as JSON.")

    def handle(self, *args, full: bool, order: list[str], as_json: bool = False, **options):
        if full == bool(order):
            raise CommandError("Give either --full or at least one --order.")
        result = detect_full() if full else detect_incremental(order)
        if as_json:
            self.stdout.write(json.dumps(result, sort_keys=True))
            return
        if "skipped" in result:
            self.stdout.write(self.style.WARNING(f"Skipped: {result['skipped']}."))
            return
        for code, counts in sorted(result.get("types", {}).items()):
            shown = ", ".join(f"{k} {v}" for k, v in counts.items() if v)
            self.stdout.write(f"{code:28} {shown or 'nothing'}")
        totals = {k: v for k, v in result.items() if k not in ("types",)}
        self.stdout.write(self.style.SUCCESS("Total: " + ", ".join(f"{k} {v}" for k, v in totals.items())))
