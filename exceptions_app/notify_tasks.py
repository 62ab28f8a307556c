"""Background jobs for exception notifications (django-q2)."""
from __future__ import annotations

from exceptions_app.notifications import exception_digests_send

DIGEST_MINUTES = 5


def exception_digests() -> dict[str, int]:
    """Scheduled: mail each role its new high-severity and newly breached exceptions."""
    return exception_digests_send()


def schedules_ensure() -> None:
    """Create (once) the digest schedule. Idempotent."""
    from django_q.models import Schedule

    Schedule.objects.get_or_create(
        name="exceptions: email digests",
        defaults={"func": "exceptions_app.notify_tasks.exception_digests", "schedule_type": Schedule.MINUTES,
                  "minutes": DIGEST_MINUTES, "repeats": -1},
    )
