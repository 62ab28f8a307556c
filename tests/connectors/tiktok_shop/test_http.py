"""connectors.http: backoff, scrubbing, ApiCall logging and the cross-process rate limiter."""
from __future__ import annotations

import json
import random
import subprocess
import sys
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from django.conf import settings as django_settings

from connectors.http import ConnectorHttp, HttpRequest, RateLimiter, scrub
from returnsync.models import ApiCall
from tests.factories import ConnectionFactory

LIMIT = 5
RUN_SECONDS = 2.0

# One worker process: take slots (each followed by a short request) until the run ends,
# then print the granted times as JSON.
WORKER = r"""
import json, sys, time
from connectors.http import RateLimiter
redis_url, lock_dir, key, limit, run_for = sys.argv[1:6]
granted = []
last = [0.0]
def clock():
    last[0] = time.time()
    return last[0]
limiter = RateLimiter(key, int(limit), redis_url=redis_url, lock_dir=lock_dir, clock=clock)
print("ready", flush=True)
start_at = float(sys.stdin.readline())
end_at = start_at + float(run_for)
while time.time() < start_at:
    time.sleep(0.005)
while True:
    limiter.acquire()
    if last[0] >= end_at:
        break
    granted.append(last[0])
    time.sleep(0.02)  # the "request" itself, as a real worker would make
print(json.dumps(granted))
"""


def run_two_processes(redis_url: str, lock_dir, key: str) -> list[list[float]]:
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", WORKER, redis_url, str(lock_dir), key, str(LIMIT), str(RUN_SECONDS)],
            cwd=django_settings.BASE_DIR, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for proc in procs:  # both interpreters are up and hold a limiter
        assert proc.stdout.readline().strip() == "ready", proc.stderr.read()
    start_at = time.time() + 0.1
    results = []
    for proc in procs:
        proc.stdin.write(f"{start_at}\n")
        proc.stdin.flush()
    for proc in procs:
        out, err = proc.communicate(timeout=30)
        assert proc.returncode == 0, err
        results.append(json.loads(out))
    return results


def test_file_limiter_holds_across_two_processes(tmp_path):
    per_process = run_two_processes("", tmp_path, f"test-{time.time_ns()}")
    starts = sorted(t for times in per_process for t in times)

    assert all(times for times in per_process), "both processes got slots"
    assert len(starts) > LIMIT  # and it does not stall: the next window gets used
    # Sliding window: any LIMIT+1 consecutive starts span at least one second.
    spans = [starts[i + LIMIT] - starts[i] for i in range(len(starts) - LIMIT)]
    assert min(spans) >= 1.0 - 1e-6, spans


def _redis_url() -> str:
    url = django_settings.REDIS_URL or "redis://127.0.0.1:6379/15"
    try:
        import redis

        redis.Redis.from_url(url, socket_connect_timeout=0.5).ping()
    except (redis.exceptions.RedisError, OSError):
        pytest.skip(f"no Redis reachable at {url}")
    return url


def test_redis_limiter_holds_across_two_processes(tmp_path):
    url = _redis_url()
    per_process = run_two_processes(url, tmp_path, f"test-{time.time_ns()}")
    starts = [t for times in per_process for t in times]

    assert all(times for times in per_process)
    per_second = Counter(int(t) for t in starts)
    assert max(per_second.values()) <= LIMIT, per_second  # fixed one-second windows
    assert len(starts) > LIMIT  # and it does not stall: the next window gets used


def test_file_limiter_waits_for_the_oldest_slot_to_age(tmp_path):
    now = [1000.0]
    waits: list[float] = []

    def wait(seconds):
        waits.append(seconds)
        now[0] += seconds

    limiter = RateLimiter("unit", 3, redis_url="", lock_dir=tmp_path, clock=lambda: now[0], wait=wait)
    for _ in range(3):
        assert limiter.acquire() == 0
        now[0] += 0.1
    assert limiter.acquire() == pytest.approx(0.7)  # first slot (t=1000.0) frees at 1001.0
    assert waits == [pytest.approx(0.7)]


def test_full_jitter_backoff_is_bounded_capped_and_honours_retry_after(db):
    http = ConnectorHttp(ConnectionFactory(), rng=random.Random(3), limiter=RateLimiter("x", 1, redis_url="", lock_dir="/tmp"))
    for attempt in range(1, 12):
        delay = http.backoff(attempt)
        assert 0 <= delay <= min(http.backoff_cap, http.backoff_base * 2 ** (attempt - 1))
    assert http.backoff(1, retry_after=4) >= 4
    assert http.backoff(1, retry_after=10_000) == http.backoff_cap


def test_scrub_removes_queries_and_secrets():
    text = "HTTPConnectionPool(host='x'): Max retries exceeded with url: /api/v2/token/get?app_secret=s3cr3t&x=1 (boom tok-123456)"
    cleaned = scrub(text, ["tok-123456"])
    assert "s3cr3t" not in cleaned and "tok-123456" not in cleaned and "/api/v2/token/get" in cleaned


@pytest.fixture
def plain_server():
    """A server answering with the statuses queued in ``server.statuses`` (then 200)."""
    statuses: list[int] = []

    class Handler(BaseHTTPRequestHandler):
        def log_message(self, *args):
            pass

        def do_GET(self):
            status = statuses.pop(0) if statuses else 200
            raw = json.dumps({"ok": status == 200}).encode()
            self.send_response(status)
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True).start()
    server.statuses = statuses
    server.url = f"http://127.0.0.1:{server.server_address[1]}"
    yield server
    server.shutdown()
    server.server_close()


def test_generic_client_retries_5xx_not_4xx_and_logs_each_attempt(db, plain_server, tmp_path):
    connection = ConnectionFactory(credentials={"api_key": "k-very-secret"})
    sleeps: list[float] = []
    http = ConnectorHttp(connection, sleep=sleeps.append, limiter=RateLimiter("g", 100, redis_url="", lock_dir=tmp_path))
    def build(attempt):
        return HttpRequest("GET", plain_server.url + "/things", params={"key": "k-very-secret"})

    plain_server.statuses[:] = [502, 500]
    assert http.send(build).data == {"ok": True}
    assert len(sleeps) == 2

    plain_server.statuses[:] = [404]
    with pytest.raises(RuntimeError):
        http.send(build)
    assert len(sleeps) == 2

    rows = list(ApiCall.objects.filter(connection=connection).order_by("id").values_list("attempt", "http_status", "path"))
    assert rows == [(1, 502, "/things"), (2, 500, "/things"), (3, 200, "/things"), (1, 404, "/things")]
    assert not ApiCall.objects.filter(error__contains="k-very-secret").exists()
