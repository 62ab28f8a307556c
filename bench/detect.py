"""Detection benchmark: full and incremental exception passes over 200,000 returns.

Run as ``.venv/bin/python bench/detect.py`` (SQLite) or with
``DATABASE_URL=postgres://…/<any db>`` (PostgreSQL). Like ``bench/ingest.py`` it sets
Django up on a throwaway database: a temporary SQLite file, or a dedicated
``returnsync_bench_detect`` PostgreSQL database created and dropped by this script.

Data (``BENCH_RETURNS``, default 200,000): each TikTok return with its order (one line),
its portal record (one line), and what a healthy return in that state has (refunds,
succeeded write-backs and restocks for the finished ones). 10 % are faulty, spread evenly
over the twelve exception types (plus orphan portal records of their own). The rows are
written by a child process with plain bulk inserts, so this process's peak memory is the
detection's (and Django's), not the generator's.

Measures:
1. the floor: one SQL join + count over the same tables (TikTok return ⋈ order ⟕ portal
   return), and the same restricted to the changed orders;
2. the full pass (``detection_run`` over everything) on the fresh data: it opens every
   case; then the same pass again (steady state: every case refreshed, nothing new);
3. the incremental pass after 1,000 returns changed (half of them broken, a few faulty
   ones fixed), restricted to those orders;
4. peak memory: the process's max RSS (``resource.getrusage``).

Each time is printed with its ratio to the floor; the last line is one JSON object.
"""
from __future__ import annotations

import json
import os
import random
import resource
import subprocess
import sys
import time
from datetime import timedelta
from decimal import Decimal
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import django_setup, setup_database

RETURNS = int(os.environ.get("BENCH_RETURNS", "200000"))
CHANGED = int(os.environ.get("BENCH_CHANGED", "1000"))
FAULT_RATE = 0.10
BENCH_DB = "returnsync_bench_detect"
FAULTS = ("portal_bypass", "orphan_portal_return", "status_drift", "tracking_mismatch", "approval_deadline",
          "refund_mismatch", "partial_refund", "refund_lag", "refund_outside_portal",
          "bundle_component_unmapped", "restock_latency", "sync_failure")
TARGET_FULL_S, TARGET_INCREMENTAL_S, TARGET_MEMORY_MB = 15.0, 1.0, 400.0


# --- bulk rows ------------------------------------------------------------------------------


class Table:
    """Rows for one model as dicts → tuples in column order, written with the database's
    fastest plain insert (``executemany`` on SQLite, ``COPY`` on PostgreSQL)."""

    def __init__(self, model, now) -> None:
        from django.db import connection, models

        self.model = model
        self.rows: list[tuple] = []
        self.fields = list(model._meta.concrete_fields)
        self.columns = [f.column for f in self.fields]
        ops = connection.ops
        self.defaults = []
        self.convert = []
        for f in self.fields:
            if getattr(f, "auto_now", False) or getattr(f, "auto_now_add", False):
                default = now
            elif f.has_default():
                default = f.get_default()
            else:
                default = None
            if isinstance(f, models.DateTimeField):
                conv = ops.adapt_datetimefield_value
            elif isinstance(f, models.DecimalField):
                def conv(v, f=f):
                    return (ops.adapt_decimalfield_value(v, f.max_digits, f.decimal_places))
            elif isinstance(f, models.JSONField):
                conv = json.dumps
            else:
                conv = None
            self.convert.append(conv)
            self.defaults.append(default)
        self.names = [f.attname for f in self.fields]

    def add(self, **values) -> None:
        row = []
        for name, default, conv in zip(self.names, self.defaults, self.convert, strict=True):
            value = values.get(name, default)
            row.append(value if conv is None or value is None else conv(value))
        self.rows.append(tuple(row))

    def write(self) -> None:
        from django.db import connection

        if not self.rows:
            return
        table = connection.ops.quote_name(self.model._meta.db_table)
        columns = ", ".join(connection.ops.quote_name(c) for c in self.columns)
        raw = connection.connection
        if connection.vendor == "postgresql":
            with raw.cursor() as cur:
                with cur.copy(f"COPY {table} ({columns}) FROM STDIN") as copy:
                    for row in self.rows:
                        copy.write_row(row)
                cur.execute(f"SELECT setval(pg_get_serial_sequence('{self.model._meta.db_table}', 'id'), "
                            f"(SELECT MAX(id) FROM {table}))")
        else:
            marks = ", ".join("?" * len(self.columns))
            raw.executemany(f"INSERT INTO {table} ({columns}) VALUES ({marks})", self.rows)
        self.rows = []


def _generate() -> dict:
    """Write the data set (run in a child process)."""
    from django.db import connection, transaction
    from django.utils import timezone

    from returnsync import models as m
    from returnsync.choices import Grade, InboundStatus, JobStatus, RefundStatus, Stage, System

    rng = random.Random(5)
    now = timezone.now()
    tiktok = m.Connection.objects.create(name="bench tiktok", kind=System.TIKTOK_SHOP, base_url="http://127.0.0.1:1/t",
                                         credentials={"app_key": "k", "app_secret": "s"})
    portal = m.Connection.objects.create(name="bench zigzag", kind=System.ZIGZAG, base_url="http://127.0.0.1:1/z",
                                         credentials={"username": "u", "password": "p"})
    bundle = m.BundleMapping.objects.create(bundle_sku="KIT-1", name="Kit")
    m.BundleComponent.objects.create(bundle=bundle, component_sku="KIT-1-A", price_share=Decimal("0.5"))
    m.BundleComponent.objects.create(bundle=bundle, component_sku="KIT-1-B", price_share=Decimal("0.5"))

    tables = {name: Table(model, now) for name, model in (
        ("order", m.Order), ("line", m.OrderLine), ("mr", m.MarketplaceReturn), ("pr", m.PortalReturn),
        ("prl", m.PortalReturnLine), ("refund", m.Refund), ("wb", m.WriteBack), ("adj", m.InventoryAdjustment),
        ("event", m.InboundEvent))}
    ids = {"wb": 0, "adj": 0, "refund": 0, "event": 0, "pr": 0}
    faulty = int(RETURNS * FAULT_RATE)
    kinds = [FAULTS[i % len(FAULTS)] for i in range(faulty)] + [None] * (RETURNS - faulty)
    rng.shuffle(kinds)
    counts: dict[str, int] = {}

    def next_id(name: str) -> int:
        ids[name] += 1
        return ids[name]

    def flush() -> None:
        with transaction.atomic():
            for table in tables.values():
                table.write()

    for n, fault in enumerate(kinds, start=1):
        counts[fault or "healthy"] = counts.get(fault or "healthy", 0) + 1
        order_id, return_id = f"577{n:015d}", f"4035{n:014d}"
        healthy_kind = n % 3  # 0 in transit, 1 finished, 2 requested
        price = Decimal("24.00")
        sku = f"SKU-{n % 997:04d}"
        tracking = f"1Z{n:016d}"
        created = now - timedelta(days=3)
        tables["order"].add(id=n, connection_id=tiktok.pk, order_id=order_id, raw_status="DELIVERED",
                            buyer_postal_code=f"{90000 + n % 9999:05d}", currency="USD",
                            placed_at=now - timedelta(days=10), source_updated_at=created, raw={})
        line_sku = "KIT-1" if fault == "bundle_component_unmapped" else sku
        tables["line"].add(id=n, order_id=n, line_id=f"L{n}", sku_id=str(1700000000 + n % 997), seller_sku=line_sku,
                           product_name="Everyday Tee", sale_price=price, currency="USD")
        mr = dict(id=n, connection_id=tiktok.pk, return_id=return_id, order_ref=order_id, order_id=n,
                  return_type="RETURN_AND_REFUND", raw_status="BUYER_SHIPPED_ITEM", stage=Stage.IN_TRANSIT,
                  role="BUYER", tracking_number=tracking, carrier="UPS", refund_total=price, currency="USD",
                  next_action="", next_action_deadline=None, source_created_at=created, source_updated_at=created,
                  raw={})
        pr = dict(connection_id=portal.pk, external_id=f"ZZ-{n}", order_ref=order_id, return_ref=return_id,
                  marketplace_return_id=n, order_id=n, raw_status="IN_TRANSIT", stage=Stage.IN_TRANSIT,
                  tracking_number=tracking, carrier="UPS", authorized_refund=price, currency="USD",
                  source_created_at=created, source_updated_at=created, raw={}, partial_refund_detail={})
        line = dict(line_id=f"PL{n}", sku=sku, product_name="Everyday Tee", expected_quantity=1, received_quantity=0,
                    grade=Grade.PENDING, unit_price=price, currency="USD")
        finished = fault is None and healthy_kind == 1
        if fault is None and healthy_kind == 2:
            mr.update(stage=Stage.REQUESTED, raw_status="RETURN_OR_REFUND_REQUEST_PENDING",
                      next_action="SELLER_RESPOND_RETURN", next_action_deadline=now + timedelta(hours=40))
            pr.update(stage=Stage.REQUESTED, raw_status="PENDING_APPROVAL")
        if finished:
            mr.update(stage=Stage.REFUNDED, raw_status="RETURN_OR_REFUND_REQUEST_SUCCESS")
            pr.update(stage=Stage.REFUNDED, raw_status="REFUNDED", received_at=now - timedelta(days=2),
                      inspected_at=now - timedelta(days=2))
            line.update(received_quantity=1, grade=Grade.SELLABLE)
        if fault == "portal_bypass":
            mr.update(source_created_at=now - timedelta(hours=2))
        elif fault == "status_drift":
            pr.update(stage=Stage.RECEIVED, raw_status="RECEIVED", received_at=now - timedelta(hours=5))
        elif fault == "tracking_mismatch":
            pr.update(tracking_number=f"9400{n:016d}", carrier="USPS")
        elif fault == "approval_deadline":
            mr.update(stage=Stage.REQUESTED, raw_status="RETURN_OR_REFUND_REQUEST_PENDING",
                      next_action="SELLER_RESPOND_RETURN", next_action_deadline=now + timedelta(hours=3))
            pr.update(stage=Stage.REQUESTED, raw_status="PENDING_APPROVAL")
        elif fault == "refund_mismatch":
            pr.update(authorized_refund=Decimal("30.00"))
        elif fault == "partial_refund":
            mr.update(stage=Stage.RECEIVED, next_action="SELLER_RESPOND_RECEIVE_PACKAGE")
            pr.update(stage=Stage.RECEIVED, raw_status="RECEIVED", received_at=now - timedelta(minutes=30),
                      partial_refund_amount=Decimal("12.00"),
                      partial_refund_detail={"currency": "USD", "total": "24.00", "refund_amount": "12.00",
                                             "withheld_amount": "12.00", "lines": [
                                                 {"line_id": f"PL{n}", "sku": sku, "expected_quantity": 2,
                                                  "received_quantity": 1, "refund_amount": "12.00",
                                                  "reason": "1 of 2 received"}]})
        elif fault == "refund_lag":
            mr.update(stage=Stage.INSPECTED, raw_status="BUYER_SHIPPED_ITEM")
            pr.update(stage=Stage.INSPECTED, raw_status="GRADED", received_at=now - timedelta(hours=90),
                      inspected_at=now - timedelta(hours=89))
            line.update(received_quantity=1, grade=Grade.DAMAGED)
        elif fault == "refund_outside_portal":
            mr.update(stage=Stage.REFUNDED, raw_status="RETURN_OR_REFUND_REQUEST_SUCCESS")
            tables["refund"].add(id=next_id("refund"), connection_id=tiktok.pk, external_id=f"RF{n}",
                                 order_ref=order_id, marketplace_return_id=n, amount=price, currency="USD",
                                 raw_status="SUCCESS", status=RefundStatus.SUCCEEDED, refunded_at=now, raw={})
        elif fault == "bundle_component_unmapped":
            line.update(sku="KIT-1-Z")
        elif fault == "restock_latency":
            mr.update(stage=Stage.INSPECTED)
            pr.update(stage=Stage.INSPECTED, raw_status="GRADED", received_at=now - timedelta(hours=8),
                      inspected_at=now - timedelta(hours=7))
            line.update(received_quantity=1, grade=Grade.SELLABLE)
        elif fault == "sync_failure":
            if n % 2:
                tables["wb"].add(id=next_id("wb"), connection_id=tiktok.pk, action="approve_received_package",
                                 marketplace_return_id=n, payload={}, idempotency_key=f"arp:{n}",
                                 status=JobStatus.DEAD, attempts=8, max_attempts=8, last_error="HTTP 500")
            else:
                tables["event"].add(id=next_id("event"), connection_id=tiktok.pk, source=System.TIKTOK_SHOP,
                                    event_type="12", dedupe_key=f"notif-{n}", headers={}, body=b"{}",
                                    subject_ref=return_id, status=InboundStatus.FAILED, attempts=5,
                                    error="KeyError: 'data'", received_at=now)
        tables["mr"].add(**mr)
        if fault == "portal_bypass":
            if n % 2:
                tables["wb"].add(id=next_id("wb"), connection_id=portal.pk, action="create_portal_return",
                                 marketplace_return_id=n, payload={}, idempotency_key=f"mirror:{n}",
                                 status=JobStatus.DEAD, attempts=8, max_attempts=8, last_error="422 unknown SKU")
        else:
            pr_id = next_id("pr")
            tables["pr"].add(id=pr_id, **pr)
            tables["prl"].add(id=pr_id, portal_return_id=pr_id, **line)
            if finished:
                tables["refund"].add(id=next_id("refund"), connection_id=tiktok.pk, external_id=f"RF{n}",
                                     order_ref=order_id, marketplace_return_id=n, amount=price, currency="USD",
                                     raw_status="SUCCESS", status=RefundStatus.SUCCEEDED, refunded_at=now, raw={})
                tables["wb"].add(id=next_id("wb"), connection_id=tiktok.pk, action="approve_received_package",
                                 marketplace_return_id=n, payload={}, idempotency_key=f"arp:{n}",
                                 status=JobStatus.SUCCEEDED, attempts=1, max_attempts=8, succeeded_at=now)
                tables["adj"].add(id=next_id("adj"), seller_sku=sku, warehouse_id="7001", delta=1,
                                  reason="restock", status=JobStatus.SUCCEEDED, idempotency_key=f"restock:{n}",
                                  portal_return_line_id=pr_id, applied_at=now)
        if fault == "orphan_portal_return":  # a portal record of its own, matching no TikTok order
            pr_id = next_id("pr")
            tables["pr"].add(id=pr_id, **{**pr, "external_id": f"ZZ-O{n}", "order_ref": f"999{n:012d}",
                                          "return_ref": "", "marketplace_return_id": None, "order_id": None,
                                          "source_created_at": now - timedelta(hours=5)})
            tables["prl"].add(id=pr_id, portal_return_id=pr_id, **line)
        if n % 20000 == 0:
            flush()
    flush()
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE")
        if connection.vendor == "sqlite":  # as the app's auto-checkpoint would, before it is read
            cursor.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    return counts


# --- measurements ---------------------------------------------------------------------------


FLOOR_SQL = (
    'SELECT COUNT(*) FROM "returnsync_marketplacereturn" mr '
    'JOIN "returnsync_order" o ON o.id = mr.order_id '
    'LEFT JOIN "returnsync_portalreturn" pr ON pr.marketplace_return_id = mr.id'
)


def _timed(fn) -> tuple[float, object]:
    started = time.perf_counter()
    result = fn()
    return time.perf_counter() - started, result


def _floor(order_refs: list[str] | None = None) -> tuple[float, int]:
    from django.db import connection

    sql, params = FLOOR_SQL, []
    if order_refs is not None:
        sql += " WHERE mr.order_ref IN (" + ", ".join(["%s"] * len(order_refs)) + ")"
        params = order_refs
    best, count = float("inf"), 0
    for _ in range(3):
        with connection.cursor() as cursor:
            elapsed, _ = _timed(lambda: cursor.execute(sql, params))
            started = time.perf_counter()
            count = cursor.fetchone()[0]
            elapsed += time.perf_counter() - started
        best = min(best, elapsed)
    return best, count


def _change_returns(rng: random.Random) -> list[str]:
    """CHANGED returns change: most get a new portal tracking number (a new mismatch), a
    few faulty ones get fixed (their refund mismatch corrected). Returns their order ids."""
    from django.db import transaction

    from returnsync.models import PortalReturn

    with_portal = list(PortalReturn.objects.filter(marketplace_return__isnull=False)
                       .values_list("id", "order_ref", "authorized_refund"))
    picked = rng.sample(with_portal, CHANGED)
    fixed = [pk for pk, _, amount in picked if amount == Decimal("30.00")]
    broken = [pk for pk, _, amount in picked if amount != Decimal("30.00")][: CHANGED // 2]
    with transaction.atomic():
        PortalReturn.objects.filter(pk__in=fixed).update(authorized_refund=Decimal("24.00"))
        for start in range(0, len(broken), 500):
            PortalReturn.objects.filter(pk__in=broken[start:start + 500]).update(tracking_number="CHANGED-LABEL")
    return sorted({ref for _, ref, _ in picked})


def _max_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # Linux: KiB


def main() -> None:
    if sys.argv[1:] == ["--generate"]:
        django_setup()
        print(json.dumps(_generate()))
        return
    label, cleanup = setup_database(BENCH_DB)
    django_setup()
    try:
        from django.core.management import call_command

        from exceptions_app.detection import counts_total, detection_run
        from exceptions_app.models import ExceptionCase
        from exceptions_app.rules import rules as configured_rules
        from exceptions_app.rules.base import Scope

        call_command("migrate", verbosity=0, interactive=False)
        from django.db import connections

        connections.close_all()
        started = time.perf_counter()
        child = subprocess.run([sys.executable, __file__, "--generate"], check=True, capture_output=True, text=True,
                               env=os.environ.copy())
        mix = json.loads(child.stdout.strip().splitlines()[-1])
        print(f"database: {label}; {RETURNS} returns with orders and portal records, "
              f"{RETURNS - mix['healthy']} faulty ({time.perf_counter() - started:.0f} s to generate)")

        floor_full, joined = _floor()
        print(f"floor (join + count over {joined} rows): {floor_full * 1000:.0f} ms")
        rss_before = _max_rss_mb()

        t_full, counts = _timed(lambda: detection_run(scope=Scope()))
        total = counts_total(counts)
        print(f"full pass, first   : {t_full:6.2f} s  ratio to floor {t_full / floor_full:6.1f}  "
              f"opened {total['opened']}")
        # The steady pass again, one type at a time, to show where the time goes.
        per_rule_s: dict[str, float] = {}
        counts2: dict[str, dict[str, int]] = {}
        for rule in configured_rules():
            elapsed, one = _timed(lambda rule=rule: detection_run(scope=Scope(), rules=[rule]))
            per_rule_s[rule.code] = round(elapsed, 2)
            counts2.update({code: c for code, c in one.items() if code == rule.code})
        t_steady = sum(per_rule_s.values())
        total2 = counts_total(counts2)
        print(f"full pass, steady  : {t_steady:6.2f} s  ratio to floor {t_steady / floor_full:6.1f}  "
              f"refreshed {total2['refreshed']}, opened {total2['opened']}")

        refs = _change_returns(random.Random(11))
        floor_inc, _ = _floor(refs)
        t_inc, counts3 = _timed(lambda: detection_run(scope=Scope(order_refs=frozenset(refs))))
        total3 = counts_total(counts3)
        print(f"incremental ({len(refs)} changed): {t_inc:6.3f} s  ratio to floor {t_inc / floor_inc:6.1f}  "
              f"opened {total3['opened']}, auto-resolved {total3['auto_resolved']}, refreshed {total3['refreshed']}")
        peak = _max_rss_mb()
        per_type = {code: c["opened"] for code, c in counts.items()}
        print("cases per type:", per_type)
        print("steady pass seconds per type:", per_rule_s)
        ok = t_full <= TARGET_FULL_S and t_inc <= TARGET_INCREMENTAL_S and peak <= TARGET_MEMORY_MB
        print(f"peak memory (max RSS): {peak:.0f} MB (before the passes {rss_before:.0f} MB); "
              f"targets full < {TARGET_FULL_S:.0f} s, incremental < {TARGET_INCREMENTAL_S:.0f} s, "
              f"< {TARGET_MEMORY_MB:.0f} MB: {'met' if ok else 'MISSED'}")
        result = {
            "database": label,
            "returns": RETURNS,
            "faulty": RETURNS - mix["healthy"],
            "cases_open": ExceptionCase.objects.filter(status__in=("open", "claimed")).count(),
            "floor_ms": round(floor_full * 1000, 1),
            "full_pass_s": round(t_full, 2),
            "full_ratio_to_floor": round(t_full / floor_full, 1),
            "full_steady_s": round(t_steady, 2),
            "full_steady_ratio_to_floor": round(t_steady / floor_full, 1),
            "incremental_returns": len(refs),
            "incremental_floor_ms": round(floor_inc * 1000, 2),
            "incremental_s": round(t_inc, 3),
            "incremental_ratio_to_floor": round(t_inc / floor_inc, 1),
            "peak_rss_mb": round(peak),
            "targets_met": ok,
            "steady_s_per_type": per_rule_s,
        }
    finally:
        cleanup()
    print(json.dumps(result))


if __name__ == "__main__":
    main()
