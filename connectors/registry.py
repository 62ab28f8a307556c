"""What each connector contributes to the running system, in one list.

Adding a system means adding its package and a line here.
"""
from __future__ import annotations

from django.utils.module_loading import import_string

# Idempotent functions creating each connector's django-q2 schedules (poll, retries).
SCHEDULE_SETUP = ("connectors.tiktok_shop.tasks.schedules_ensure",)


def schedules_ensure_all() -> list[str]:
    for dotted in SCHEDULE_SETUP:
        import_string(dotted)()
    return list(SCHEDULE_SETUP)
