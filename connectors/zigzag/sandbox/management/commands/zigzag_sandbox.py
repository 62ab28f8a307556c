"""Drive the ZigZag sandbox by hand: ship, scan, grade, deliver, faults.

    manage.py zigzag_sandbox scan <return id or TikTok return id> [--received SKU=QTY ...] [--location L]
    manage.py zigzag_sandbox grade <ref> [--grade SKU=GRADE ...]      (default: received → SELLABLE)
    manage.py zigzag_sandbox ship <ref>
    manage.py zigzag_sandbox deliver
    manage.py zigzag_sandbox faults --account USER [--set key=value ...]
"""
from __future__ import annotations

import json

from django.core.management.base import BaseCommand, CommandError

from connectors.zigzag.sandbox import api
from connectors.zigzag.sandbox.models import ZigZagAccount, ZigZagReturn


def _pairs(values: list[str] | None) -> dict[str, str] | None:
    if not values:
        return None
    out = {}
    for value in values:
        key, sep, rest = value.partition("=")
        if not sep:
            raise CommandError(f"expected KEY=VALUE, got {value!r}")
        out[key] = rest
    return out


class Command(BaseCommand):
    help = "Simulate ZigZag warehouse activity in the sandbox and send its webhooks."

    def add_arguments(self, parser):
        parser.add_argument("action", choices=["ship", "scan", "grade", "deliver", "faults"])
        parser.add_argument("ref", nargs="?", default="")
        parser.add_argument("--received", action="append", help="SKU or item id = quantity")
        parser.add_argument("--grade", action="append", help="SKU or item id = grade")
        parser.add_argument("--location", default=None)
        parser.add_argument("--account", default=None)
        parser.add_argument("--set", action="append", help="fault key=JSON value")
        parser.add_argument("--no-deliver", action="store_true")

    def handle(self, *args, action, ref, **opts):
        try:
            if action == "faults":
                account = opts["account"] or ZigZagAccount.objects.values_list("username", flat=True).first()
                faults = {k: json.loads(v) for k, v in (_pairs(opts["set"]) or {}).items()}
                self.stdout.write(json.dumps(api.set_faults(account, **faults)))
                return
            if action != "deliver":
                if not ref:
                    raise CommandError("give a ZigZag return id or TikTok return id")
                ret = ZigZagReturn.objects.filter(return_id=ref).first() or \
                    ZigZagReturn.objects.filter(reference=ref).first()
                if ret is None:
                    raise CommandError(f"no sandbox ZigZag return {ref}")
                if action == "ship":
                    state = api.ship(ret.account, ret.return_id)
                elif action == "scan":
                    received = _pairs(opts["received"])
                    state = api.scan(ret.account, ret.return_id, location=opts["location"],
                                     received=None if received is None else {k: int(v) for k, v in received.items()})
                else:
                    state = api.grade(ret.account, ret.return_id, grades=_pairs(opts["grade"]))
                self.stdout.write(f"{state['id']} ({state['reference']}): {state['status']}")
            if not opts["no_deliver"]:
                self.stdout.write(f"webhooks delivered: {api.deliver_webhooks()}")
        except (ValueError, KeyError) as exc:
            raise CommandError(str(exc)) from exc
