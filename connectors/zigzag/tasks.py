"""Background jobs of the ZigZag connector (django-q2). Webhook processing, the poll and
the write-back runs are the shared ones (``connectors.tasks``); ZigZag adds the mirror sweep."""
from __future__ import annotations

from django.db import transaction


def mirror_sweep() -> int:
    from connectors.zigzag.services import mirror_sweep as sweep

    with transaction.atomic():
        return sweep()


def schedules_ensure() -> None:
    """Create (once) the ZigZag schedule: the mirror sweep (anything a listener missed), every minute."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(name="zigzag: mirror sweep", defaults={
        "func": "connectors.zigzag.tasks.mirror_sweep", "schedule_type": Schedule.MINUTES, "minutes": 1,
        "repeats": -1})
