"""The fault and load proof, reduced: ``bench/soak.py`` with a few dozen returns (a few
hundred events, each delivered three times shuffled under faults, a worker cluster
SIGKILLed and the web server restarted) against the same scenario run clean.

It starts the deployed shape (gunicorn, two django-q2 clusters on Redis, PostgreSQL), so
it runs with the PostgreSQL suite (``DATABASE_URL=postgres://...``, CI's second pass) or
with ``SOAK_TEST=1``; it uses its own databases (``soak_test_<pid>_*``), Redis database 9
and port 8054, never the suite's."""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse, urlunparse

import pytest

ROOT = Path(__file__).resolve().parents[2]
RETURNS = int(os.environ.get("SOAK_TEST_RETURNS", "30"))


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=2):
            return True
    except OSError:
        return False


def _postgres_server() -> str | None:
    url = os.environ.get("DATABASE_URL", "")
    if url.startswith(("postgres://", "postgresql://")):
        return urlunparse(urlparse(url)._replace(path=""))
    if os.environ.get("SOAK_TEST") == "1":
        return "postgres://postgres@127.0.0.1:5432"
    return None


@pytest.mark.skipif(_postgres_server() is None,
                    reason="starts the deployed shape on PostgreSQL: runs with the PostgreSQL suite or SOAK_TEST=1")
def test_duplicated_shuffled_faulty_delivery_with_a_killed_worker_ends_as_the_clean_run():
    server = _postgres_server()
    parsed = urlparse(server)
    assert _reachable(parsed.hostname or "127.0.0.1", parsed.port or 5432), "PostgreSQL is not reachable"
    assert _reachable("127.0.0.1", 6379), "Redis is not reachable on 127.0.0.1:6379"
    env = {**os.environ, "SOAK_RETURNS": str(RETURNS), "SOAK_DATABASE_URL": server,
           "SOAK_DB_PREFIX": f"soak_test_{os.getpid()}", "SOAK_PORT": os.environ.get("SOAK_TEST_PORT", "8054"),
           "SOAK_REDIS_URL": "redis://127.0.0.1:6379/9", "SOAK_QUIET_TIMEOUT": "600"}
    env.pop("DATABASE_URL", None)
    result = subprocess.run([sys.executable, "bench/soak.py"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=1800, check=False)
    print(result.stdout[-4000:])
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert lines, result.stdout[-3000:] + result.stderr[-3000:]
    summary = json.loads(lines[-1])
    assert summary["chaos"] == {"killed": True, "restarted": True}
    assert summary["identical"], [line for line in result.stdout.splitlines() if "DIFF" in line]
    assert summary["duplicated_write_backs"] == 0
    assert summary["lost_events"] == 0
    assert summary["unexpected_dead_letters"] == 0 and summary["dead_letters"] == 3
    assert summary["missing_exceptions"] == 0 and summary["expected_exceptions"] > 0
    assert summary["events"] >= RETURNS * 6
    assert summary["ok"] and result.returncode == 0
