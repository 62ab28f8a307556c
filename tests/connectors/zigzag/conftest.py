"""Both sandboxes on a live server, wired together as `make run` wires them."""
from __future__ import annotations

from decimal import Decimal

import pytest
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from connectors.tiktok_shop.sandbox import api as tiktok_sandbox
from connectors.zigzag.sandbox import api as zigzag_sandbox
from returnsync.models import WarehouseMapping
from returnsync.services import ComponentSpec, bundle_mapping_save


def drain(rounds: int = 25) -> int:
    """Run the queued background jobs (what the django-q cluster would do), until none is left."""
    ran = 0
    for _ in range(rounds):
        queued = list(OrmQ.objects.order_by("id"))
        if not queued:
            return ran
        for row in queued:
            task = row.task
            row.delete()
            func = task["func"]
            (import_string(func) if isinstance(func, str) else func)(*task.get("args", ()), **task.get("kwargs", {}))
            ran += 1
    raise AssertionError("background jobs keep queuing more jobs")


def pump(tiktok, zigzag) -> None:
    """Deliver both sandboxes' webhooks and run what they queue, until everything is quiet."""
    for _ in range(10):
        sent = tiktok_sandbox.deliver_webhooks(tiktok) + zigzag_sandbox.deliver_webhooks(zigzag)
        ran = drain()
        if not sent and not ran:
            return
    raise AssertionError("webhooks keep coming")


@pytest.fixture
def systems(live_server):
    tiktok = tiktok_sandbox.connect(name="tiktok-e2e", server_url=live_server.url)
    zigzag = zigzag_sandbox.connect(name="zigzag-e2e", server_url=live_server.url, tiktok_connection=tiktok)
    warehouse = tiktok_sandbox.get_shop(tiktok).warehouses[0]
    WarehouseMapping.objects.create(connection=zigzag, location_code="ZZ-LDN-1", tiktok_warehouse_id=warehouse,
                                    is_default=True)
    bundle_mapping_save(bundle_sku="BUNDLE-1", components=[
        ComponentSpec("CMP-A", 1, Decimal("0.6")), ComponentSpec("CMP-B", 1, Decimal("0.4"))])
    return tiktok, zigzag, warehouse
