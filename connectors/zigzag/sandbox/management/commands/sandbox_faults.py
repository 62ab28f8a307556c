"""Inject failure modes into the TikTok Shop and ZigZag sandboxes (after both are seeded).

    manage.py sandbox_faults --mode status_drift --mode refund_lag --count 2
    manage.py sandbox_faults --mix --seed 1          # every mode once + clean returns (make run)

Prints the manifest: which TikTok order / return / ZigZag reference carries each fault.
Idempotent per seed: the same ids are found, not created again.
"""
from django.core.management.base import BaseCommand, CommandError

from connectors import sandbox_faults
from connectors.tiktok_shop.sandbox.management.commands.sandbox_seed import (
    DEFAULT_CONNECTION as TIKTOK_NAME,
)
from connectors.zigzag.sandbox.scenario import DEFAULT_CONNECTION as ZIGZAG_NAME


class Command(BaseCommand):
    help = "Create sandbox returns whose processing ends in the given failure modes; print the manifest."

    def add_arguments(self, parser):
        parser.add_argument("--mode", action="append", default=[], choices=sandbox_faults.MODES, metavar="CODE",
                            help=f"Failure mode (repeat for several): {', '.join(sandbox_faults.MODES)}.")
        parser.add_argument("--count", type=int, default=1, help="Faults per mode (default 1).")
        parser.add_argument("--mix", action="store_true", help="Every mode, plus --clean returns without a fault.")
        parser.add_argument("--clean", type=int, default=5, help="Clean returns with --mix (default 5).")
        parser.add_argument("--seed", type=int, default=1, help="Same seed = same ids (nothing piles up).")
        parser.add_argument("--tiktok-connection-name", default=TIKTOK_NAME)
        parser.add_argument("--zigzag-connection-name", default=ZIGZAG_NAME)

    def handle(self, *args, mode, count, mix, clean, seed, tiktok_connection_name, zigzag_connection_name, **kw):
        from returnsync.choices import System
        from returnsync.models import Connection

        if not mode and not mix:
            raise CommandError("Give --mix or at least one --mode CODE.")
        if count < 1 or count > 50 or clean < 0:
            raise CommandError("--count must be 1..50 and --clean 0 or more.")
        tiktok = Connection.objects.filter(kind=System.TIKTOK_SHOP, name=tiktok_connection_name,
                                           is_sandbox=True).first()
        zigzag = Connection.objects.filter(kind=System.ZIGZAG, name=zigzag_connection_name, is_sandbox=True).first()
        if tiktok is None or zigzag is None:
            raise CommandError("Seed both sandboxes first: manage.py sandbox_seed, then zigzag_sandbox_seed.")
        scenario = sandbox_faults.Scenario.for_connections(tiktok=tiktok, zigzag=zigzag, seed=seed)
        manifest = sandbox_faults.inject(scenario, modes=mode or sandbox_faults.MODES, count=count)
        if mix:
            manifest += [sandbox_faults.inject_clean(scenario, n) for n in range(clean)]
        for entry in manifest:
            ids = " ".join(f"{label} {value}" for label, value in (
                ("order", entry.order_id), ("return", entry.return_id), ("zigzag ref", entry.portal_reference),
                ("sku", entry.sku), ("event", entry.event_id)) if value and not (
                label == "zigzag ref" and value == entry.return_id))
            state = "" if entry.created else "  (already there)"
            self.stdout.write(f"{entry.mode:26} #{entry.n} {ids} — {entry.note}{state}")
        created = sum(entry.created for entry in manifest)
        self.stdout.write(self.style.SUCCESS(
            f"{created} injected, {len(manifest) - created} already there (seed {seed}); the connectors pick "
            "them up from the sandboxes' webhooks, and detection opens the exceptions."))
