from django.core.management.base import BaseCommand

from connectors.registry import schedules_ensure_all


class Command(BaseCommand):
    help = "Create (or keep) every connector's background schedules: polling, retries, re-queues."

    def handle(self, *args, **options) -> None:
        for dotted in schedules_ensure_all():
            self.stdout.write(f"schedules ensured: {dotted}")
