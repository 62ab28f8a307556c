"""What every benchmark shares: a throwaway database, Django set up for measuring, and the
app served from a separate process the way a production WSGI server serves it."""
from __future__ import annotations

import gc
import os
import sys
import tempfile
import time
import warnings
from pathlib import Path
from urllib.parse import urlparse, urlunparse

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))


# --- database setup -----------------------------------------------------------------------


def setup_database(bench_db: str) -> tuple[str, callable]:
    """Point DATABASE_URL at a throwaway database (a temporary SQLite file, or the
    PostgreSQL database ``bench_db`` created here and dropped by ``cleanup``); return
    (label, cleanup)."""
    url = os.environ.get("DATABASE_URL", "")
    tmp = tempfile.mkdtemp(prefix="returnsync-bench-")
    os.environ["RETURNSYNC_VAR_DIR"] = tmp  # dev secrets for this run only
    if url.startswith(("postgres://", "postgresql://")):
        import psycopg

        parsed = urlparse(url)
        admin_url = urlunparse(parsed._replace(path="/postgres"))
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
            conn.execute(f'CREATE DATABASE "{bench_db}"')
        os.environ["DATABASE_URL"] = urlunparse(parsed._replace(path=f"/{bench_db}"))

        def cleanup() -> None:
            import shutil

            from django.db import connections

            connections.close_all()
            with psycopg.connect(admin_url, autocommit=True) as conn:
                conn.execute(f'DROP DATABASE IF EXISTS "{bench_db}" WITH (FORCE)')
            shutil.rmtree(tmp, ignore_errors=True)

        return "postgresql", cleanup
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp}/bench.sqlite3"

    def cleanup() -> None:
        import shutil

        from django.db import connections

        connections.close_all()
        shutil.rmtree(tmp, ignore_errors=True)

    return "sqlite", cleanup


SERVER_THREADS = int(os.environ.get("BENCH_SERVER_THREADS", "8"))
# Worker processes sharing the listening socket (pre-fork, as gunicorn runs): Python runs
# one thread at a time per process, so CPU-bound pages need a process per core.
SERVER_PROCESSES = int(os.environ.get("BENCH_SERVER_PROCESSES", "1"))


def serve() -> None:
    """``<bench>.py --serve``: the server under test, in its own process (as in production,
    where the web server is not the process sending the webhooks). The project's WSGI app
    behind a fixed pool of worker threads (what gunicorn's gthread worker does): each
    thread keeps its DB connection (CONN_MAX_AGE), instead of opening one per request as
    a thread-per-request server would. Prints its port, then serves until terminated."""
    from concurrent.futures import ThreadPoolExecutor as Pool

    from django.conf import settings
    from django.core.servers.basehttp import WSGIRequestHandler, WSGIServer
    from django.core.wsgi import get_wsgi_application
    from django.urls import clear_url_caches

    if os.environ.get("BENCH_URLCONF"):
        settings.ROOT_URLCONF = os.environ["BENCH_URLCONF"]
        clear_url_caches()

    class QuietHandler(WSGIRequestHandler):
        def log_message(self, *args) -> None:
            pass

    class PooledWSGIServer(WSGIServer):
        request_queue_size = 128
        pool = Pool(max_workers=SERVER_THREADS)

        def process_request(self, request, client_address) -> None:
            self.pool.submit(self._work, request, client_address)

        def _work(self, request, client_address) -> None:
            try:
                self.finish_request(request, client_address)
            except Exception:
                self.handle_error(request, client_address)
            finally:
                self.shutdown_request(request)

    if os.environ.get("BENCH_SERVER") == "thread-per-request":  # for comparison only
        from django.core.servers.basehttp import ThreadedWSGIServer as PooledWSGIServer
    server = PooledWSGIServer(("127.0.0.1", 0), QuietHandler, allow_reuse_address=True)
    app = get_wsgi_application()
    if os.environ.get("BENCH_SERVER_TIMES"):  # diagnostics: time spent inside the app, per request
        times = open(os.environ["BENCH_SERVER_TIMES"], "a", buffering=1)
        inner = app

        def app(environ, start_response):
            started = time.perf_counter()
            try:
                return inner(environ, start_response)
            finally:
                times.write(f"{time.time():.3f} {(time.perf_counter() - started) * 1000:.2f}\n")
    server.set_app(app)
    print(server.server_port, flush=True)
    for _ in range(SERVER_PROCESSES - 1):  # children share the socket; start the bench in its own session
        if os.fork() == 0:
            break
    gc.collect()
    gc.freeze()  # startup objects: not scanned again by every full collection
    server.serve_forever(poll_interval=0.05)


def django_setup() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "returnsync.settings")
    os.environ.setdefault("DEBUG", "0")  # DEBUG keeps every SQL string in memory
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    warnings.filterwarnings("ignore", message="No directory at")
    import django

    django.setup()
