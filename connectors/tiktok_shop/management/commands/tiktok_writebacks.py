"""Run due TikTok write-backs and inventory adjustments now, in this process."""
from django.core.management.base import BaseCommand
from django.db.models import Q
from django.utils import timezone

from connectors.tiktok_shop.services import inventory_adjustment_apply, writeback_run
from returnsync.choices import JobStatus, System, WriteBackAction
from returnsync.models import InventoryAdjustment, WriteBack


class Command(BaseCommand):
    help = "Run every due TikTok write-back (queued, or retrying with its time come)."

    def add_arguments(self, parser):
        parser.add_argument("--limit", type=int, default=200)

    def handle(self, *args, **options):
        now = timezone.now()
        due = Q(status__in=[JobStatus.QUEUED, JobStatus.RETRYING]) & (
            Q(next_attempt_at__isnull=True) | Q(next_attempt_at__lte=now))
        ids = WriteBack.objects.filter(due, connection__kind=System.TIKTOK_SHOP).exclude(
            action=WriteBackAction.UPDATE_INVENTORY).order_by("id").values_list("id", flat=True)[:options["limit"]]
        for pk in list(ids):
            result = writeback_run(write_back_id=pk)
            self.stdout.write(f"write-back {pk}: {result.status} {result.last_error[:120]}")
        adj_due = Q(status=JobStatus.QUEUED) | Q(status=JobStatus.RETRYING, write_back__next_attempt_at__lte=now)
        adj_ids = InventoryAdjustment.objects.filter(adj_due, write_back__isnull=False).order_by("id").values_list(
            "id", flat=True)[:options["limit"]]
        for pk in list(adj_ids):
            result = inventory_adjustment_apply(adjustment_id=pk)
            self.stdout.write(f"inventory adjustment {pk}: {result.status} {result.last_error[:120]}")
