"""Keep every sandbox alive: each tick plays one step of simulated life for every enabled
sandbox connection (marketplaces first, then portals, then order hubs) and delivers
their webhooks. Each system's step is its sandbox's ``traffic_tick`` hook."""
import logging
import random
import signal
import threading

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import close_old_connections

from returnsync import registry
from returnsync.models import Connection
from returnsync.registry import ConnectorRole

log = logging.getLogger(__name__)
ROLE_ORDER = (ConnectorRole.MARKETPLACE, ConnectorRole.RETURNS_PORTAL, ConnectorRole.ORDER_HUB)


def traffic_once(rng: random.Random) -> list[str]:
    """One tick over every sandbox connection; returns a line per connection."""
    lines = []
    for role in ROLE_ORDER:
        for connector in registry.connectors(role=role):
            spec = connector.sandbox
            if spec is None or spec.traffic_tick is None:
                continue
            for connection in Connection.objects.filter(kind=connector.kind, is_sandbox=True, is_enabled=True):
                try:
                    counts = spec.traffic_tick(connection, rng=rng)
                    delivered = spec.deliver_webhooks(connection) if spec.deliver_webhooks else 0
                except Exception as exc:  # one system failing never stops the others
                    log.warning("sandbox traffic for %s failed: %s", connection, exc)
                    lines.append(f"{connection}: failed ({type(exc).__name__}: {exc})")
                    continue
                moved = ", ".join(f"{v} {k}" for k, v in counts.items())
                lines.append(f"{connection}: {moved or 'nothing'}; {delivered} webhooks delivered")
    return lines


class Command(BaseCommand):
    help = "Loop: each tick moves every sandbox a step along and delivers its webhooks (Ctrl-C stops)."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=3.0, help="Seconds between ticks.")
        parser.add_argument("--iterations", type=int, default=0, help="Stop after K ticks (0 = forever).")
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--server-url", default="", help="Unused (kept for older scripts): sandbox "
                                                              "connections already know where they live.")

    def handle(self, *args, interval, iterations, seed, **kw):
        if not settings.SANDBOX_ENABLED:
            raise CommandError("The sandboxes are off (SANDBOX_ENABLED=false): there is no traffic to make.")
        stop = threading.Event()

        def on_signal(signum, frame):
            self.stdout.write(f"Signal {signum}: stopping after this tick.")
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        rng = random.Random(seed)
        tick = 0
        try:
            while not stop.is_set() and (iterations <= 0 or tick < iterations):
                tick += 1
                close_old_connections()
                for line in traffic_once(rng):
                    self.stdout.write(f"tick {tick}: {line}")
                if iterations <= 0 or tick < iterations:
                    stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Sandbox traffic stopped.")
