from django.core.management.base import BaseCommand
from django.utils.module_loading import import_string

from returnsync.registry import schedules_ensure_all


def obsolete_schedules_delete() -> list[str]:
    """Schedules whose function no longer exists (renamed in an upgrade): a worker would fail
    on each of them every minute. Deleted, with their names returned."""
    from django_q.models import Schedule

    gone = []
    for schedule in Schedule.objects.all():
        try:
            import_string(schedule.func)
        except ImportError:
            gone.append(schedule.name or schedule.func)
            schedule.delete()
    return gone


class Command(BaseCommand):
    help = "Create (or keep) every app's background schedules: polling, retries, re-queues, detection, digests."

    def handle(self, *args, **options) -> None:
        for name in obsolete_schedules_delete():
            self.stdout.write(f"obsolete schedule removed: {name}")
        for dotted in schedules_ensure_all():
            self.stdout.write(f"schedules ensured: {dotted}")
