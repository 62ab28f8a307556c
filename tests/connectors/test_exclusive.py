"""``connectors.jobs.exclusive``: one holder at a time across threads (and so processes), the
lock under every stock adjustment of one SKU (the soak found two restocks of one SKU
reading the same quantity and both writing it)."""
from __future__ import annotations

import threading
import time

import pytest
from django.db import connections

from connectors.jobs import exclusive

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_second_holder_waits_for_the_first_and_other_keys_do_not():
    spans: dict[str, tuple[float, float]] = {}

    def hold(name: str, key: str, start_after: float = 0.0) -> None:
        time.sleep(start_after)
        try:
            with exclusive(key):
                entered = time.monotonic()
                time.sleep(0.3)
                spans[name] = (entered, time.monotonic())
        finally:
            connections.close_all()

    threads = [threading.Thread(target=hold, args=("first", "tiktok-stock:1:SKU")),
               threading.Thread(target=hold, args=("second", "tiktok-stock:1:SKU", 0.05)),
               threading.Thread(target=hold, args=("other", "tiktok-stock:1:OTHER", 0.05))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert spans["second"][0] >= spans["first"][1] - 0.01  # waited for the first to leave
    assert spans["other"][0] < spans["first"][1]  # another SKU did not wait
