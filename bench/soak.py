"""Fault and load proof: the deployed shape under duplicated, shuffled deliveries and faults.

``make soak`` (or ``.venv/bin/python bench/soak.py``) runs the same seeded scenario twice on
this machine, each time in its own PostgreSQL database with everything a production host
runs, started as separate processes with production settings (``DJANGO_ENV=production``,
plus ``SANDBOX_ENABLED=1`` for the fake TikTok Shop and ZigZag, served by the same app):

- gunicorn (``deploy/gunicorn.conf.py``, ``SOAK_WEB_WORKERS`` workers) on 127.0.0.1;
- two django-q2 clusters on the Redis broker (database 9), one of them the schedule owner;
- the sandboxes' webhooks delivered by this script, the way TikTok and ZigZag send them.

The scenario, for ``SOAK_RETURNS`` TikTok returns (default 10,000): each return is
approved on TikTok (a type-12 webhook; we mirror it into ZigZag, whose label webhook
follows), shipped (ZigZag ``in_transit``; TikTok's carrier marks the parcel delivered),
then scanned and graded (one in ten scanned one item short, one in twenty graded damaged:
partial refunds to settle), and a few deliberately bad ZigZag webhooks are sent (they must
end as dead letters, nothing else may).

1. The *faulty* run delivers every webhook three times in shuffled order while TikTok's
   sandbox answers 10 % of calls 429, 5 % 503 and loses the answer of 5 % (applied, then
   too late for the 2 s read timeout), and ZigZag's answers 20 % 503; one worker cluster
   is killed with SIGKILL mid-run and restarted, and the web server is restarted.
2. The *clean* run delivers each webhook once, in order, with no faults.

Then it checks that every TikTok return and portal record, every write-back, stock
adjustment, open exception and the sandboxes' own state (decisions per return, stock per
SKU and warehouse) are identical; that no received-package decision or stock increment
was made twice; that every delivered event was stored; that the only dead letters are the
bad ones; and prints events/s sustained, webhook p50/p99, and the time from a webhook's
receipt to the exception it raised being open (p50/p95). The last line is one JSON
object; the exit status is 0 only when every check passed.

Environment: ``SOAK_RETURNS`` (size), ``SOAK_SEED``, ``SOAK_PORT`` (8053),
``SOAK_DATABASE_URL`` (the PostgreSQL server, default ``postgres://postgres@127.0.0.1:5432``;
databases ``soak_faulty``/``soak_clean`` with ``SOAK_DB_PREFIX``), ``SOAK_REDIS_URL``
(``redis://127.0.0.1:6379/9``: flushed at the start of each run), ``SOAK_WEB_WORKERS`` (3),
``SOAK_Q_WORKERS`` (2 per cluster), ``SOAK_QUIET_TIMEOUT`` (seconds to wait for the system
to settle, 900), ``SOAK_KEEP_DB=1`` to keep the databases for a look afterwards.
"""
from __future__ import annotations

import json
import os
import random
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

SIZE = int(os.environ.get("SOAK_RETURNS", "10000"))
SEED = int(os.environ.get("SOAK_SEED", "12"))
PORT = int(os.environ.get("SOAK_PORT", "8053"))
PG_SERVER = os.environ.get("SOAK_DATABASE_URL", "postgres://postgres@127.0.0.1:5432")
DB_PREFIX = os.environ.get("SOAK_DB_PREFIX", "soak")
REDIS_URL = os.environ.get("SOAK_REDIS_URL", "redis://127.0.0.1:6379/9")
WEB_WORKERS = os.environ.get("SOAK_WEB_WORKERS", "3")
Q_WORKERS = os.environ.get("SOAK_Q_WORKERS", "2")
QUIET_TIMEOUT = float(os.environ.get("SOAK_QUIET_TIMEOUT", "900"))
COPIES = 3
SENDERS = 8
BAD_WEBHOOKS = 3
SHORT_EVERY, DAMAGED_EVERY = 10, 20
READ_TIMEOUT = 2
TIKTOK_FAULTS = {"rate_limit": 10, "server_error": 0.05, "answer_lost": 0.05, "answer_lost_ms": 2500}
ZIGZAG_FAULTS = {"server_error": 0.2}
SKUS = 24
LOCATION = "ZZ-LDN-1"


def log(message: str) -> None:
    print(f"[{datetime.now():%H:%M:%S}] {message}", flush=True)


# --- the deployed processes ---------------------------------------------------------------------


def deployed_env(database: str, var_dir: str) -> dict[str, str]:
    parsed = urlparse(PG_SERVER)
    env = {k: v for k, v in os.environ.items()
           if not k.startswith("DJANGO_SETTINGS") and k not in ("DJANGO_ALLOW_ASYNC_UNSAFE", "DATABASE_URL")}
    env.update(
        DJANGO_SETTINGS_MODULE="returnsync.settings", DJANGO_ENV="production", SANDBOX_ENABLED="1",
        SECURE_SSL_REDIRECT="0", DEBUG="0", LOG_LEVEL="WARNING",
        SECRET_KEY="soak-" + "k" * 60, FIELD_ENCRYPTION_KEY="c29hay1zb2FrLXNvYWstc29hay1zb2FrLXNvYWstc28=",
        ALLOWED_HOSTS="127.0.0.1,localhost", RETURNSYNC_VAR_DIR=var_dir,
        DATABASE_URL=urlunparse(parsed._replace(path=f"/{database}")), REDIS_URL=REDIS_URL,
        WEB_BIND=f"127.0.0.1:{PORT}", WEB_WORKERS=WEB_WORKERS, WEB_ACCESS_LOG="/dev/null", Q_WORKERS=Q_WORKERS,
        PYTHONUNBUFFERED="1",
        # The backstops after a killed worker, sooner than production's minutes: a webhook
        # whose task died with cluster b is queued again after 30 s, a write-back it held
        # is claimable after 90 s (above the 60 s job timeout).
        INBOUND_REQUEUE_AFTER_SECONDS="30", JOB_LEASE_SECONDS="90",
    )
    return env


class Processes:
    """gunicorn and two django-q2 clusters, started and stopped like a deployment does."""

    def __init__(self, env: dict[str, str], logs: Path):
        self.env, self.logs = env, logs
        self.web: subprocess.Popen | None = None
        self.clusters: dict[str, subprocess.Popen] = {}

    def _start(self, name: str, args: list[str], **extra) -> subprocess.Popen:
        out = open(self.logs / f"{name}.log", "a")  # noqa: SIM115 — lives as long as the process
        return subprocess.Popen(args, cwd=ROOT, env={**self.env, **extra}, stdout=out, stderr=subprocess.STDOUT,
                                start_new_session=True)

    def start_web(self) -> None:
        gunicorn = str(Path(sys.executable).with_name("gunicorn"))
        self.web = self._start("web", [gunicorn, "-c", "deploy/gunicorn.conf.py", "returnsync.wsgi"])
        wait_http(f"http://127.0.0.1:{PORT}/healthz")

    def stop_web(self) -> None:
        if self.web is not None:
            self.web.send_signal(signal.SIGTERM)
            self.web.wait(timeout=60)
            self.web = None

    def start_cluster(self, name: str) -> None:
        self.clusters[name] = self._start(f"cluster-{name}", [sys.executable, "manage.py", "qcluster"],
                                          Q_SCHEDULER="1" if name == "a" else "0")

    def kill_cluster(self, name: str) -> None:
        process = self.clusters.pop(name)
        os.killpg(process.pid, signal.SIGKILL)  # the whole cluster: sentinel, workers, monitor
        process.wait(timeout=30)

    def stop_all(self) -> None:
        self.stop_web()
        for name in list(self.clusters):
            process = self.clusters.pop(name)
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)


def wait_http(url: str, timeout: float = 60) -> None:
    import requests

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            requests.get(url, timeout=2)
            return
        except requests.RequestException:
            time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


# --- delivering webhooks as the senders do -------------------------------------------------------


class Deliverer:
    """POSTs webhook bodies (each ``copies`` times, optionally shuffled) from a pool of
    senders; a refused connection or a 5xx is retried (the senders retry); records the
    latency of every answered delivery."""

    def __init__(self, rng: random.Random):
        self.rng = rng
        self.latencies: list[float] = []
        self.statuses: dict[int, int] = {}
        self.sent = 0
        self.lock = threading.Lock()
        self.local = threading.local()
        self.stopped = threading.Event()

    def _post(self, item) -> None:
        import requests

        url, body, headers = item
        session = getattr(self.local, "session", None) or requests.Session()
        self.local.session = session
        deadline = time.monotonic() + 300
        while True:
            started = time.perf_counter()
            try:
                response = session.post(url, data=body, headers=headers, timeout=30)
            except requests.RequestException:
                session = self.local.session = requests.Session()
                if time.monotonic() > deadline or self.stopped.is_set():
                    raise
                time.sleep(0.25)
                continue
            elapsed = (time.perf_counter() - started) * 1000
            if response.status_code >= 500 and time.monotonic() < deadline:
                time.sleep(0.25)
                continue
            with self.lock:
                self.latencies.append(elapsed)
                self.statuses[response.status_code] = self.statuses.get(response.status_code, 0) + 1
                self.sent += 1
            return

    def deliver(self, items: list, *, copies: int, shuffle: bool, progress=None) -> None:
        batch = [item for item in items for _ in range(copies)]
        if shuffle:
            self.rng.shuffle(batch)
        if not shuffle:  # in order, one at a time: each event handled as it comes
            for item in batch:
                self._post(item)
            return
        done = 0
        pool = ThreadPoolExecutor(max_workers=SENDERS)
        try:
            for future in [pool.submit(self._post, item) for item in batch]:
                future.result()
                done += 1
                if progress is not None:
                    progress(done / len(batch))
        except BaseException:
            self.stopped.set()  # stopping (SIGTERM, an error): senders give up instead of retrying
            pool.shutdown(wait=False, cancel_futures=True)
            raise
        pool.shutdown()


def pending_webhooks() -> list[tuple[str, bytes, dict]]:
    """Every webhook the sandboxes have queued and not sent, marked sent (this script sends them)."""
    from connectors.tiktok_shop.sandbox.models import SandboxWebhook
    from connectors.tiktok_shop.signing import webhook_signature
    from connectors.zigzag.sandbox.api import sign
    from connectors.zigzag.sandbox.models import ZigZagWebhook

    items = []
    tiktok = list(SandboxWebhook.objects.filter(status=SandboxWebhook.Status.PENDING).select_related("app")
                  .order_by("id"))
    for row in tiktok:
        body = row.body.encode()
        items.append((row.app.webhook_url, body, {
            "Content-Type": "application/json",
            "Authorization": webhook_signature(row.app.app_key, row.app.app_secret, body)}))
    SandboxWebhook.objects.filter(pk__in=[r.pk for r in tiktok]).update(status=SandboxWebhook.Status.DELIVERED)
    zigzag = list(ZigZagWebhook.objects.filter(status=ZigZagWebhook.Status.PENDING).select_related("account")
                  .order_by("id"))
    for row in zigzag:
        body = row.body.encode()
        items.append((row.account.webhook_url, body, {
            "Content-Type": "application/json", "X-ZigZag-Event": row.event,
            "X-ZigZag-Signature": sign(row.account.webhook_secret, body)}))
    ZigZagWebhook.objects.filter(pk__in=[r.pk for r in zigzag]).update(status=ZigZagWebhook.Status.DELIVERED)
    return items


# --- one run ---------------------------------------------------------------------------------------


def busy_counts() -> dict[str, int]:
    from django_q.brokers import get_broker

    from connectors.tiktok_shop.sandbox.models import SandboxWebhook
    from connectors.zigzag.sandbox.models import ZigZagWebhook
    from returnsync.choices import InboundStatus, JobStatus
    from returnsync.models import InboundEvent, InventoryAdjustment, WriteBack

    pending = (JobStatus.QUEUED, JobStatus.RUNNING, JobStatus.RETRYING)
    return {
        "queued_tasks": get_broker().queue_size(),
        "events_unprocessed": InboundEvent.objects.filter(status=InboundStatus.RECEIVED).count(),
        "events_failed_retryable": InboundEvent.objects.filter(status=InboundStatus.FAILED, attempts__lt=5)
        .exclude(event_type="malformed").count(),
        "write_backs_pending": WriteBack.objects.filter(status__in=pending).count(),
        "stock_pending": InventoryAdjustment.objects.filter(status__in=pending).count(),
        "webhooks_unsent": SandboxWebhook.objects.filter(status="pending").count()
        + ZigZagWebhook.objects.filter(status="pending").count(),
    }


def settle(deliverer: Deliverer, *, copies: int, shuffle: bool) -> None:
    """Deliver what the sandboxes queue meanwhile and wait until nothing is left to do."""
    from connectors.webhooks import inbound_events_requeue

    deadline = time.monotonic() + QUIET_TIMEOUT
    quiet = 0
    last_requeue = last_report = time.monotonic()
    while time.monotonic() < deadline:
        items = pending_webhooks()
        if items:
            deliverer.deliver(items, copies=copies, shuffle=shuffle)
            quiet = 0
            continue
        counts = busy_counts()
        if time.monotonic() - last_report > 15:
            log(f"  waiting: {counts}")
            last_report = time.monotonic()
        if not any(counts.values()):
            quiet += 1
            if quiet >= 3:
                return
        else:
            quiet = 0
        if counts["events_failed_retryable"] and time.monotonic() - last_requeue > 20:
            # What the scheduled requeue does every few minutes, sooner: a processing failure
            # that outlived the client's retries is tried again.
            inbound_events_requeue(older_than_seconds=15)
            last_requeue = time.monotonic()
        time.sleep(1.0)
    raise RuntimeError(f"the system did not settle within {QUIET_TIMEOUT:.0f} s: {busy_counts()}")


def scenario_returns(tiktok) -> list[str]:
    """SIZE orders with 1-2 lines from a fixed catalogue, each with an approved return."""
    from connectors.tiktok_shop.sandbox import api

    rng = random.Random(SEED)
    catalog = [{"sku_id": api.derived_id("17", SEED, "sku", n, digits=19),
                "product_id": api.derived_id("17", SEED, "product", n % 8, digits=19),
                "seller_sku": f"SOAK-{n:02d}", "product_name": f"Soak product {n}",
                "sale_price": f"{rng.randint(1000, 6000) / 100:.2f}"} for n in range(SKUS)]
    created = int(time.time()) - 7200
    return_ids = []
    for n in range(SIZE):
        order_id = api.derived_id("57", SEED, "order", n)
        lines = [dict(line) for line in rng.sample(catalog, rng.choice((1, 1, 2)))]
        api.create_order(tiktok, lines=lines, order_id=order_id, create_time=created - 86400, notify=False,
                         stock=100)
        ret = api.create_return(tiktok, order_id=order_id, return_id=api.derived_id("40", SEED, "return", n),
                                status="AWAITING_BUYER_SHIP", create_time=created, notify=True)
        return_ids.append(ret["return_id"])
    return return_ids


def run(mode: str, out: Path) -> None:
    """One run (a child process of the orchestrator, with the deployed environment)."""
    faulty = mode == "faulty"
    import django

    django.setup()
    from django.core.management import call_command

    from connectors.tiktok_shop.sandbox import api as tiktok_api
    from connectors.tiktok_shop.sandbox import traffic
    from connectors.zigzag.sandbox import api as zigzag_api
    from connectors.zigzag.sandbox.models import ZigZagReturn
    from returnsync.models import WarehouseMapping
    from returnsync.registry import schedules_ensure_all

    call_command("migrate", verbosity=0, interactive=False)
    base = f"http://127.0.0.1:{PORT}"
    tiktok = tiktok_api.connect(name="soak-tiktok", server_url=base)
    zigzag = zigzag_api.connect(name="soak-zigzag", server_url=base, tiktok_connection=tiktok)
    for conn in (tiktok, zigzag):
        conn.options = {**(conn.options or {}), "read_timeout_seconds": READ_TIMEOUT}
        conn.rate_limit_per_second = 200
        conn.save(update_fields=["options", "rate_limit_per_second"])
    warehouse = tiktok_api.get_shop(tiktok).warehouses[0]
    WarehouseMapping.objects.create(connection=zigzag, location_code=LOCATION, tiktok_warehouse_id=warehouse,
                                    is_default=True)
    schedules_ensure_all()

    processes = Processes(json.loads(os.environ["SOAK_ENV"]), out.parent)
    processes.start_web()
    processes.start_cluster("a")
    processes.start_cluster("b")
    deliverer = Deliverer(random.Random(f"{SEED}-deliveries"))
    copies, shuffle = (COPIES, True) if faulty else (1, False)
    timings: dict[str, float] = {}
    try:
        log(f"{mode}: creating {SIZE} TikTok returns")
        return_ids = scenario_returns(tiktok)
        if faulty:
            tiktok_api.set_faults(tiktok, seed=SEED, **TIKTOK_FAULTS)
            zigzag_api.set_faults(zigzag, seed=SEED, **ZIGZAG_FAULTS)

        # Phase 1: TikTok's return webhooks (and, as we mirror, ZigZag's label webhooks).
        started = time.monotonic()
        items = pending_webhooks()
        chaos = {"killed": False, "restarted": False}

        def progress(share: float) -> None:
            if faulty and share >= 0.4 and not chaos["killed"]:
                chaos["killed"] = True
                log("SIGKILL cluster b")
                processes.kill_cluster("b")
                threading.Timer(3.0, lambda: (log("cluster b restarted"), processes.start_cluster("b"))).start()
            if faulty and share >= 0.7 and not chaos["restarted"]:
                chaos["restarted"] = True
                log("restarting the web server")
                processes.stop_web()
                processes.start_web()

        log(f"{mode}: phase 1, {len(items)} webhooks × {copies}")
        deliverer.deliver(items, copies=copies, shuffle=shuffle, progress=progress)
        settle(deliverer, copies=copies, shuffle=shuffle)
        timings["phase1_s"] = time.monotonic() - started

        # Phase 2: shipped; TikTok's carrier delivers the parcel.
        started = time.monotonic()
        labels = {ref: (zz_id, tracking) for ref, zz_id, tracking in
                  ZigZagReturn.objects.filter(account__username=zigzag.credentials["username"])
                  .values_list("reference", "return_id", "tracking_number")}
        refs = {ref: zz_id for ref, (zz_id, _) in labels.items()}
        for return_id in return_ids:
            if return_id in refs:
                zigzag_api.ship(zigzag, refs[return_id])
                # The buyer ships with the portal's label, so TikTok's carrier shows its number.
                traffic.parcel_delivered(tiktok, return_id, labels[return_id][1])
        log(f"{mode}: phase 2, {len(refs)} parcels shipped and delivered")
        settle(deliverer, copies=copies, shuffle=shuffle)
        timings["phase2_s"] = time.monotonic() - started

        # Phase 3: scanned (some short) and graded (some damaged), plus bad webhooks.
        started = time.monotonic()
        for n, return_id in enumerate(return_ids):
            if return_id not in refs:
                continue
            ret = ZigZagReturn.objects.get(return_id=refs[return_id])
            skus = [item["sku"] for item in ret.items]
            received = None
            if n % SHORT_EVERY == 3:
                received = {sku: 1 for sku in skus[1:]} | {skus[0]: 0}
            zigzag_api.scan(zigzag, ret.return_id, received=received)
            grades = {sku: "SELLABLE" for sku in skus}
            if n % DAMAGED_EVERY == 7:
                grades[skus[0]] = "DAMAGED"
            zigzag_api.grade(zigzag, ret.return_id, grades=grades)
        for n in range(BAD_WEBHOOKS):
            zigzag_api.queue_raw_webhook(zigzag, {"event_id": f"soak-bad-{n}", "event": "return.updated",
                                                  "occurred_at": datetime.now(UTC).isoformat()})
        log(f"{mode}: phase 3, scanned and graded")
        settle(deliverer, copies=copies, shuffle=shuffle)
        timings["phase3_s"] = time.monotonic() - started

        # One full detection pass now (a scheduled one may be leased by the killed cluster for
        # its 10-minute lease; the pass itself is what matters here).
        from exceptions_app.detection import detection_run
        from exceptions_app.rules.base import Scope

        detection_run(scope=Scope())
        result = {"snapshot": snapshot(tiktok, zigzag), "figures": figures(deliverer, timings),
                  "chaos": chaos}
    finally:
        processes.stop_all()
    out.write_text(json.dumps(result, default=str))


# --- what is compared --------------------------------------------------------------------------------


def snapshot(tiktok, zigzag) -> dict:
    """The state both runs must agree on, keyed by ids both runs share (TikTok's, which the
    scenario derives from the seed); ZigZag's own ids and label numbers are random per run."""
    from connectors.tiktok_shop.sandbox.models import (
        SandboxInventory,
        SandboxReturn,
        SandboxWebhook,
    )
    from connectors.zigzag.sandbox.models import ZigZagWebhook
    from exceptions_app.models import ExceptionCase
    from returnsync.choices import InboundStatus
    from returnsync.models import (
        InboundEvent,
        InventoryAdjustment,
        MarketplaceReturn,
        PortalReturn,
        Refund,
        WriteBack,
    )

    portal_tracking = set(PortalReturn.objects.values_list("tracking_number", flat=True))
    returns = {
        r.return_id: [r.raw_status, r.stage, r.next_action, str(r.refund_total), r.order_ref,
                      "portal label" if r.tracking_number in portal_tracking else r.tracking_number]
        for r in MarketplaceReturn.objects.all()
    }
    portals = {}
    for p in PortalReturn.objects.prefetch_related("lines").select_related("marketplace_return"):
        portals[p.return_ref] = [
            p.raw_status, p.stage, p.marketplace_return.return_id if p.marketplace_return else None,
            str(p.partial_refund_amount), getattr(p, "release_state", ""),
            sorted([line.sku, line.expected_quantity, line.received_quantity, line.grade] for line in p.lines.all()),
        ]
    # Warehouse ids derive from the sandbox app's random key: compared by their place in the shop.
    from connectors.tiktok_shop.sandbox.api import get_shop

    place = {wh: f"wh{n}" for n, wh in enumerate(get_shop(tiktok).warehouses)}
    write_backs: dict[str, list] = {}
    for w in WriteBack.objects.select_related("marketplace_return", "portal_return").exclude(
            action="update_inventory"):  # stock write-backs: compared per adjustment below
        subject = (w.marketplace_return.return_id if w.marketplace_return
                   else w.portal_return.return_ref if w.portal_return else "")
        write_backs.setdefault(f"{w.action}:{subject}", []).append(w.status)
    stock: dict[str, list] = {}
    for a in InventoryAdjustment.objects.select_related("portal_return_line__portal_return", "write_back"):
        key = f"{a.seller_sku}@{place.get(a.warehouse_id, a.warehouse_id)}:{a.portal_return_line.portal_return.return_ref}"
        stock.setdefault(key, []).append([a.delta, a.status, a.write_back.status if a.write_back else None])
    decisions = {r.return_id: list(r.decisions) for r in SandboxReturn.objects.all()}
    inventory = {f"{i.sku_id}@{place.get(i.warehouse_id, i.warehouse_id)}": i.quantity
                 for i in SandboxInventory.objects.all()}
    cases = sorted(f"{c.type_code}:{c.return_ref or c.order_ref or c.portal_ref or c.title}"
                   for c in ExceptionCase.objects.filter(status__in=("open", "claimed")))
    tiktok_sent = set(SandboxWebhook.objects.values_list("tts_notification_id", flat=True))
    # The deliberately bad bodies are stored as dead letters (keyed by their digest), not as events.
    zigzag_sent = set(ZigZagWebhook.objects.exclude(event_id__startswith="soak-bad-")
                      .values_list("event_id", flat=True))
    stored = set(InboundEvent.objects.values_list("dedupe_key", flat=True))
    stored_ids = {key.split(":", 1)[1] for key in stored}
    dead = list(InboundEvent.objects.filter(status=InboundStatus.FAILED).values_list("subject_ref", "error"))
    return {
        "returns": returns, "portals": portals, "write_backs": write_backs, "stock": stock,
        "decisions": decisions, "inventory": inventory, "exceptions": cases,
        "refunds": sorted(Refund.objects.values_list("external_id", flat=True)),
        "events_sent": len(tiktok_sent) + len(zigzag_sent),
        "events_lost": sorted((tiktok_sent | zigzag_sent) - stored_ids)[:20],
        "events_lost_count": len((tiktok_sent | zigzag_sent) - stored_ids),
        "dead_letters": [[subject, error[:120]] for subject, error in dead],
        "duplicated_decisions": {rid: d for rid, d in decisions.items() if len(d) != len(set(d))},
        "duplicated_write_backs": {k: v for k, v in (write_backs | stock).items() if len(v) > 1},
        "exception_latencies_s": exception_latencies(),
    }


def exception_latencies() -> list[float]:
    """For each open exception about a return: seconds from the receipt of the last webhook
    about it before it opened (the one that raised it) to its opening."""
    from exceptions_app.models import ExceptionCase
    from returnsync.models import InboundEvent, PortalReturn

    portal_ids = dict(PortalReturn.objects.values_list("return_ref", "external_id"))
    latencies = []
    for case in ExceptionCase.objects.filter(status__in=("open", "claimed")).exclude(return_ref=""):
        subjects = {case.return_ref, portal_ids.get(case.return_ref, ""), case.portal_ref} - {""}
        received = (InboundEvent.objects.filter(subject_ref__in=subjects, received_at__lte=case.opened_at)
                    .order_by("-received_at").values_list("received_at", flat=True).first())
        if received is not None:
            latencies.append((case.opened_at - received).total_seconds())
    return latencies


def figures(deliverer: Deliverer, timings: dict[str, float]) -> dict:
    from returnsync.models import InboundEvent

    events = InboundEvent.objects.exclude(event_type="malformed").count()
    busy = sum(timings.values())
    latencies = sorted(deliverer.latencies)
    return {
        "events": events, "deliveries": deliverer.sent, "statuses": deliverer.statuses,
        "events_per_s": round(events / busy, 1) if busy else None,
        "deliveries_per_s": round(deliverer.sent / busy, 1) if busy else None,
        "webhook_p50_ms": round(statistics.median(latencies), 1) if latencies else None,
        "webhook_p99_ms": round(latencies[max(0, int(len(latencies) * 0.99) - 1)], 1) if latencies else None,
        **{k: round(v, 1) for k, v in timings.items()},
    }


def percentile(values: list[float], p: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return round(ordered[min(len(ordered) - 1, max(0, int(round(len(ordered) * p / 100)) - 1))], 2)


def differences(a: dict, b: dict, limit: int = 8) -> list[str]:
    out = []
    for section in ("returns", "portals", "write_backs", "stock", "decisions", "inventory", "refunds", "exceptions"):
        left, right = a[section], b[section]
        if isinstance(left, list):
            if left != right:
                out.append(f"{section}: only faulty {sorted(set(left) - set(right))[:limit]}, "
                           f"only clean {sorted(set(right) - set(left))[:limit]}")
            continue
        keys = sorted(set(left) | set(right))
        diff = [k for k in keys if left.get(k) != right.get(k)]
        if diff:
            out.append(f"{section}: {len(diff)} differ, e.g. " + "; ".join(
                f"{k}: faulty {left.get(k)} / clean {right.get(k)}" for k in diff[:limit]))
    return out


# --- the orchestrator -----------------------------------------------------------------------------


def database_reset(name: str) -> None:
    import psycopg

    admin = urlunparse(urlparse(PG_SERVER)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        conn.execute(f'CREATE DATABASE "{name}"')


def database_drop(name: str) -> None:
    import psycopg

    admin = urlunparse(urlparse(PG_SERVER)._replace(path="/postgres"))
    with psycopg.connect(admin, autocommit=True) as conn:
        conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def redis_flush() -> None:
    import redis

    redis.Redis.from_url(REDIS_URL).flushdb()  # database 9: this soak's own


def one_run(mode: str, work: Path) -> dict:
    name = f"{DB_PREFIX}_{mode}"
    database_reset(name)
    redis_flush()
    env = deployed_env(name, str(work / "var"))
    out = work / f"{mode}.json"
    started = time.monotonic()
    child = subprocess.Popen([sys.executable, __file__, "--run", mode, str(out)], cwd=ROOT,
                             env={**env, "SOAK_ENV": json.dumps(env)})
    try:
        child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=120)
    if child.returncode != 0 or not out.exists():
        raise RuntimeError(f"the {mode} run failed (exit {child.returncode}); logs in {work}")
    if not os.environ.get("SOAK_KEEP_DB"):
        database_drop(name)
    result = json.loads(out.read_text())
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def main() -> int:
    # A SIGTERM (``timeout``, Ctrl-C in make) unwinds through the ``finally`` blocks that stop
    # the deployed processes, instead of leaving them running.
    signal.signal(signal.SIGTERM, lambda *args: sys.exit(143))
    if sys.argv[1:2] == ["--run"]:
        run(sys.argv[2], Path(sys.argv[3]))
        return 0
    work = Path(tempfile.mkdtemp(prefix="returnsync-soak-"))
    log(f"soak: {SIZE} TikTok returns, seed {SEED}, work dir {work}; PostgreSQL {PG_SERVER}, Redis {REDIS_URL}")
    faulty = one_run("faulty", work)
    clean = one_run("clean", work)
    a, b = faulty["snapshot"], clean["snapshot"]
    diffs = differences(a, b)
    for line in diffs:
        log("DIFF " + line)
    from collections import Counter

    expected = Counter(b["exceptions"])
    unexpected_dead = [d for d in a["dead_letters"] if not d[1].startswith("malformed")]
    checks = {
        "identical": not diffs,
        "duplicated_write_backs": len(a["duplicated_write_backs"]) + len(a["duplicated_decisions"]),
        "lost_events": a["events_lost_count"],
        "dead_letters": len(a["dead_letters"]),
        "unexpected_dead_letters": len(unexpected_dead) + max(0, len(a["dead_letters"]) - BAD_WEBHOOKS),
        "missing_exceptions": sum((expected - Counter(a["exceptions"])).values()),
        "expected_exceptions": sum(expected.values()),
    }
    ok = (checks["identical"] and not checks["duplicated_write_backs"] and not checks["lost_events"]
          and not checks["unexpected_dead_letters"] and not checks["missing_exceptions"]
          and len(a["dead_letters"]) == BAD_WEBHOOKS)
    fig = faulty["figures"]
    latencies = a["exception_latencies_s"]
    summary = {
        "database": "postgresql", "returns": SIZE, "seed": SEED, "events": fig["events"],
        "deliveries": fig["deliveries"], "events_per_s": fig["events_per_s"],
        "deliveries_per_s": fig["deliveries_per_s"], "webhook_p50_ms": fig["webhook_p50_ms"],
        "webhook_p99_ms": fig["webhook_p99_ms"],
        "exception_open_p50_s": percentile(latencies, 50), "exception_open_p95_s": percentile(latencies, 95),
        "exceptions_timed": len(latencies), "clean_events_per_s": clean["figures"]["events_per_s"],
        "faulty_wall_s": faulty["wall_s"], "clean_wall_s": clean["wall_s"], "chaos": faulty["chaos"],
        **checks, "ok": ok,
    }
    log(f"faulty run: {fig['events']} events ({fig['deliveries']} deliveries, statuses {fig['statuses']}) in "
        f"{faulty['wall_s']} s; {fig['events_per_s']} events/s; webhook p50 {fig['webhook_p50_ms']} ms, "
        f"p99 {fig['webhook_p99_ms']} ms; webhook → exception open p50 {summary['exception_open_p50_s']} s, "
        f"p95 {summary['exception_open_p95_s']} s over {len(latencies)} exceptions")
    log(f"checks: {checks} → {'OK' if ok else 'FAILED'}")
    print(json.dumps(summary))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
