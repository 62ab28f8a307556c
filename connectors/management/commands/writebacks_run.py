"""Run every due write-back now, in this process (what the worker would do)."""
from django.core.management.base import BaseCommand
from django.utils import timezone

from connectors.jobs import due_q, write_back_run
from returnsync import registry
from returnsync.models import InventoryAdjustment, WriteBack


class Command(BaseCommand):
    help = "Run every due write-back (queued, or retrying with its time come) and stock adjustment."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=200)

    def handle(self, *args, **options):
        now = timezone.now()
        for pk in list(WriteBack.objects.filter(due_q(now)).order_by("id").values_list("id", flat=True)[
                :options["limit"]]):
            result = write_back_run(write_back_id=pk)
            self.stdout.write(f"write-back {pk}: {result.status} {result.last_error[:120]}")
        # Stock adjustments claim their own rows: their marketplace runs them.
        due = (InventoryAdjustment.objects.filter(due_q(now, "write_back__"), write_back__isnull=False)
               .select_related("write_back__connection").order_by("id")[:options["limit"]])
        for adjustment in list(due):
            ops = registry.marketplace_for(adjustment.write_back.connection)
            result = ops.stock_adjustment_run(adjustment_id=adjustment.pk)
            self.stdout.write(f"inventory adjustment {adjustment.pk}: {result.status} {result.last_error[:120]}")
