"""What each connector contributes to the running system, in one list.

Adding a system means adding its package and a line here.
"""
from __future__ import annotations

from django.utils.module_loading import import_string

# Idempotent functions creating the django-q2 schedules (polls, retries, detection, digests, upkeep).
SCHEDULE_SETUP = (
    "connectors.tiktok_shop.tasks.schedules_ensure",
    "connectors.zigzag.tasks.schedules_ensure",
    "exceptions_app.tasks.schedules_ensure",
    "exceptions_app.notify_tasks.schedules_ensure",
    "returnsync.maintenance.schedules_ensure",
)

# System → function(event_id=...) queueing the processing of one stored inbound event.
INBOUND_PROCESSORS = {"tiktok_shop": "connectors.tiktok_shop.webhooks.inbound_event_enqueue",
                      "zigzag": "connectors.zigzag.webhooks.inbound_event_enqueue"}

# System → function(write_back=...) queueing one run of a write-back (after commit).
WRITEBACK_RUNNERS = {"tiktok_shop": "connectors.tiktok_shop.services.writeback_enqueue",
                     "zigzag": "connectors.zigzag.services.writeback_enqueue"}

# System → function(connection=...) -> str making one cheap authenticated call; raises with
# a readable message when the connection does not work ("test connection" button).
CONNECTION_TESTS = {"tiktok_shop": "connectors.tiktok_shop.services.connection_test",
                    "zigzag": "connectors.zigzag.services.connection_test"}


def schedules_ensure_all() -> list[str]:
    for dotted in SCHEDULE_SETUP:
        import_string(dotted)()
    return list(SCHEDULE_SETUP)
