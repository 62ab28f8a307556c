"""Keep the TikTok Shop sandbox alive: new returns, returns moving on, webhooks delivered."""
import logging
import random
import signal
import threading

from django.core.management.base import BaseCommand
from django.db import close_old_connections

from connectors.tiktok_shop.sandbox import api, scenario
from connectors.tiktok_shop.sandbox.management.commands.sandbox_seed import DEFAULT_CONNECTION

log = logging.getLogger(__name__)


def _zigzag_connection():
    """The ZigZag sandbox connection, when one is set up (TikTok-only otherwise)."""
    from returnsync.choices import System
    from returnsync.models import Connection

    return Connection.objects.filter(kind=System.ZIGZAG, is_sandbox=True, is_enabled=True).order_by("id").first()


class Command(BaseCommand):
    help = "Loop: each tick creates a few returns, advances others, and delivers webhooks."

    def add_arguments(self, parser):
        parser.add_argument("--interval", type=float, default=3.0, help="Seconds between ticks.")
        parser.add_argument("--iterations", type=int, default=0, help="Stop after K ticks (0 = forever).")
        parser.add_argument("--connection-name", default=DEFAULT_CONNECTION)
        parser.add_argument("--server-url", default="http://127.0.0.1:8000")
        parser.add_argument("--webhook-base-url", default=None)
        parser.add_argument("--seed", type=int, default=None)
        parser.add_argument("--new-returns", type=int, default=2, help="At most this many new returns per tick.")

    def handle(self, *args, interval, iterations, connection_name, server_url, webhook_base_url, seed,
               new_returns, **kw):
        stop = threading.Event()

        def on_signal(signum, frame):
            self.stdout.write(f"Signal {signum}: stopping after this tick.")
            stop.set()

        previous = {sig: signal.signal(sig, on_signal) for sig in (signal.SIGINT, signal.SIGTERM)}
        rng = random.Random(seed)
        app = None
        tick = 0
        try:
            while not stop.is_set() and (iterations <= 0 or tick < iterations):
                tick += 1
                try:
                    close_old_connections()
                    if app is None:
                        connection = api.connect(name=connection_name, server_url=server_url,
                                                 webhook_base_url=webhook_base_url)
                        app = api.get_app(connection)
                    counts = scenario.traffic_tick(app, rng=rng, new_returns=new_returns)
                    delivered = api.deliver_webhooks(app)
                    pending = app.webhooks.filter(status="pending").count()
                    self.stdout.write(f"tick {tick}: {counts['created']} new, {counts['advanced']} advanced, "
                                      f"{delivered} webhooks delivered, {pending} pending")
                    zigzag = _zigzag_connection()
                    if zigzag is not None:  # the warehouse side: ship, scan, grade mirrored returns
                        from connectors.zigzag.sandbox import scenario as zigzag_scenario

                        zz = zigzag_scenario.traffic_tick(zigzag, rng=rng)
                        self.stdout.write(f"tick {tick}: ZigZag {zz['advanced']} advanced, "
                                          f"{zz['delivered']} webhooks delivered")
                except Exception as exc:
                    log.warning("sandbox traffic tick %s failed: %s", tick, exc)
                    self.stderr.write(f"tick {tick} failed ({type(exc).__name__}: {exc}); retrying next tick")
                    app = None
                if iterations <= 0 or tick < iterations:
                    stop.wait(interval)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        self.stdout.write("Sandbox traffic stopped.")
