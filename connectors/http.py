"""HTTP plumbing every connector client reuses.

``ConnectorHttp`` sends one logical request as up to ``max_attempts`` attempts:

- before each attempt it takes a slot from the connection's ``RateLimiter``
  (``connection.rate_limit_per_second``) so the limit holds across worker processes;
- the request is rebuilt for every attempt by a callable (a signed API must sign a
  fresh timestamp each time);
- every attempt is written as one ``ApiCall`` row: method, path without the query,
  HTTP status, API code, duration, attempt number, request id and a scrubbed error.
  Never tokens, signatures, query strings or bodies;
- between attempts it sleeps ``uniform(0, min(cap, base * 2 ** (attempt - 1)))``
  ("full jitter" exponential backoff), or at least a server's ``Retry-After``. The
  ``sleep`` callable and the ``rng`` are injectable so tests run instantly and
  deterministically.

What counts as success, and what is retryable, is decided by the connector through
``interpret(response) -> Outcome``; timeouts and connection errors are always
retryable. A connector turns the final failed ``Outcome`` into its own exception with
``make_error``.

Cross-process rate limit
------------------------
``RateLimiter`` picks a backend:

- **Redis** when ``settings.REDIS_URL`` is set: a fixed one-second window per
  connection, ``INCR rl:<connection_id>:<unix_second>`` + ``EXPIRE 2``; a caller whose
  count exceeds the limit waits for the next second and tries again. Holds across
  processes and hosts that share the Redis. (A fixed window admits at most N starts per
  calendar second; up to 2N can straddle a boundary.)
- **File lock** otherwise: ``<VAR_DIR>/ratelimit-<connection_id>.lock`` holds the start
  times of the last N calls; under ``fcntl.flock`` a caller takes a slot only when the
  oldest of those is more than one second old (a sliding window: never more than N
  starts in any one-second interval). Holds across processes on one host, which is how
  this app is deployed when there is no Redis (web + django-q workers on one box).

Both wait with the real clock (``time.sleep``), not the injectable backoff sleep.
"""
from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import random
import re
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import requests
from django.conf import settings
from django.db import transaction
from django.utils import timezone

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = (5.0, 30.0)  # connect, read (seconds)
READ_TIMEOUT_OPTION = "read_timeout_seconds"


def read_timeout_option(connection) -> float | None:
    """A connection's ``options["read_timeout_seconds"]`` (0.5 to 120 s), or None for the default."""
    value = ((getattr(connection, "options", None) or {}) if connection is not None else {}).get(READ_TIMEOUT_OPTION)
    try:
        return None if value in (None, "") else min(max(float(value), 0.5), 120.0)
    except (TypeError, ValueError):
        return None


# --------------------------------------------------------------------------- errors


class ConnectorApiError(RuntimeError):
    """A call to an external system that did not succeed, whatever the system.

    ``code`` is the system's own error code when it gives one (TikTok's body ``code``,
    ZigZag's ``error``), ``http_status`` the HTTP answer (None: no answer), and
    ``retryable`` whether a later attempt may succeed (the job runner retries those on
    its backoff and gives up on the others). Connectors subclass it only to name it.
    """

    system = "API"

    def __init__(self, message: str, *, code: int | str | None = None, http_status: int | None = None,
                 request_id: str = "", retryable: bool = False) -> None:
        super().__init__(message)
        self.message = message
        self.code = code
        self.http_status = http_status
        self.request_id = request_id
        self.retryable = retryable

    def __str__(self) -> str:
        parts = [self.message or f"{self.system} error"]
        if self.code not in (None, ""):
            parts.append(f"code {self.code}")
        if self.http_status is not None and parts[0] != f"HTTP {self.http_status}":
            parts.append(f"HTTP {self.http_status}")
        if self.request_id:
            parts.append(f"request {self.request_id}")
        return " · ".join(parts)


# --------------------------------------------------------------------------- limiter


class RateLimiter:
    """At most ``limit`` request starts per second for one key, across processes."""

    def __init__(
        self,
        key: str,
        limit: int,
        *,
        redis_url: str | None = None,
        lock_dir: Path | str | None = None,
        clock: Callable[[], float] = time.time,
        wait: Callable[[float], None] = time.sleep,
    ) -> None:
        self.key = str(key)
        self.limit = max(1, int(limit))
        self.clock = clock
        self.wait = wait
        self.redis_url = settings.REDIS_URL if redis_url is None else redis_url
        self._redis = None
        self.lock_dir = Path(lock_dir) if lock_dir is not None else Path(settings.VAR_DIR)

    @classmethod
    def for_connection(cls, connection, **kwargs) -> RateLimiter:
        return cls(str(connection.pk), connection.rate_limit_per_second or 50, **kwargs)

    @property
    def backend(self) -> str:
        return "redis" if self.redis_url else "file"

    def acquire(self) -> float:
        """Block until a slot is free; return the seconds spent waiting."""
        if self.redis_url:
            return self._acquire_redis()
        return self._acquire_file()

    # Redis: fixed one-second window.
    def _acquire_redis(self) -> float:
        if self._redis is None:
            import redis

            self._redis = redis.Redis.from_url(self.redis_url)
        waited = 0.0
        while True:
            now = self.clock()
            second = int(now)
            name = f"rl:{self.key}:{second}"
            pipe = self._redis.pipeline()
            pipe.incr(name)
            pipe.expire(name, 2)
            count, _ = pipe.execute()
            if count <= self.limit:
                return waited
            pause = second + 1 - now + random.uniform(0, 0.01)  # jitter: no herd at the boundary
            self.wait(pause)
            waited += pause

    # File lock: sliding one-second window over the last N start times.
    def _acquire_file(self) -> float:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        path = self.lock_dir / f"ratelimit-{self.key}.lock"
        waited = 0.0
        while True:
            fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                raw = os.read(fd, 65536).decode("ascii", errors="ignore")
                stamps = []
                for token in raw.split():
                    try:
                        stamps.append(float(token))
                    except ValueError:
                        continue
                now = self.clock()
                stamps = [s for s in stamps if now - s < 1.0][-self.limit:]
                if len(stamps) < self.limit:
                    stamps.append(now)
                    os.lseek(fd, 0, os.SEEK_SET)
                    os.ftruncate(fd, 0)
                    os.write(fd, " ".join(f"{s:.6f}" for s in stamps).encode("ascii"))
                    return waited
                pause = max(0.001, stamps[0] + 1.0 - now)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
                os.close(fd)
            self.wait(pause)
            waited += pause


# --------------------------------------------------------------------------- requests


@dataclass
class HttpRequest:
    method: str
    url: str
    params: dict[str, str] = field(default_factory=dict)
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass
class Outcome:
    """What one attempt came to, as the connector reads it."""

    ok: bool
    retryable: bool = False
    data: Any = None
    http_status: int | None = None
    api_code: str = ""
    message: str = ""
    request_id: str = ""
    retry_after: float | None = None
    response: requests.Response | None = None
    exception: BaseException | None = None


_QUERY_RE = re.compile(r"\?[^\s'\"]*")


def scrub(text: str, secrets: Iterable[str] = ()) -> str:
    """Remove query strings (which may carry secrets) and any known secret value."""
    text = _QUERY_RE.sub("?…", str(text))
    for secret in secrets:
        if secret and len(str(secret)) >= 4:
            text = text.replace(str(secret), "***")
    return text[:2000]


def json_object(response: requests.Response) -> dict:
    """The body as a JSON object ({} when it is not one: an HTML error page, a bare string)."""
    try:
        body = response.json()
    except ValueError:
        return {}
    return body if isinstance(body, dict) else {}


def retry_after_seconds(response: requests.Response) -> float | None:
    value = response.headers.get("Retry-After")
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        return None


def _savepoint_if_in_transaction():
    """Inside a caller's transaction, isolate our bookkeeping write in a savepoint so a
    failure there (logged, swallowed) does not poison the caller's transaction."""
    if transaction.get_connection().in_atomic_block:
        return transaction.atomic()
    return contextlib.nullcontext()


class ConnectorHttp:
    """Retries, backoff, rate limiting, timeouts and ``ApiCall`` logging for one connection."""

    max_attempts = 5
    backoff_base = 0.5
    backoff_cap = 30.0
    timeout = DEFAULT_TIMEOUT

    def __init__(
        self,
        connection,
        *,
        session: requests.Session | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
        limiter: RateLimiter | None = None,
        max_attempts: int | None = None,
        timeout: float | tuple[float, float] | None = None,
    ) -> None:
        self.connection = connection
        self.session = session or requests.Session()
        self.sleep = sleep
        self.rng = rng or random.Random()
        self.limiter = limiter or RateLimiter.for_connection(connection)
        if max_attempts is not None:
            self.max_attempts = max_attempts
        if timeout is not None:
            self.timeout = timeout
        else:
            read = read_timeout_option(connection)
            if read is not None:
                self.timeout = (min(DEFAULT_TIMEOUT[0], read), read)

    # ---- hooks for a connector
    def interpret(self, response: requests.Response) -> Outcome:
        """Default: 2xx is success; 429 and 5xx are retryable."""
        status = response.status_code
        try:
            data = response.json()
        except ValueError:
            data = None
        return Outcome(
            ok=200 <= status < 300,
            retryable=status == 429 or status >= 500,
            data=data,
            http_status=status,
            retry_after=retry_after_seconds(response),
            message="" if 200 <= status < 300 else f"HTTP {status}",
        )

    def make_error(self, outcome: Outcome) -> Exception:
        return ConnectorApiError(outcome.message or "no answer", code=outcome.api_code or None,
                                 http_status=outcome.http_status, request_id=outcome.request_id,
                                 retryable=outcome.retryable)

    def secret_values(self) -> list[str]:
        """Values that must never reach a log line (scrubbed from error texts)."""
        creds = self.connection.credentials or {}
        return [str(v) for v in creds.values() if isinstance(v, str)]

    # ---- machinery
    def backoff(self, attempt: int, retry_after: float | None = None) -> float:
        ceiling = min(self.backoff_cap, self.backoff_base * (2 ** (attempt - 1)))
        delay = self.rng.uniform(0, ceiling)
        if retry_after is not None:
            delay = max(delay, min(retry_after, self.backoff_cap))
        return delay

    def send(self, build: Callable[[int], HttpRequest]) -> Outcome:
        """Send with retries; return the successful ``Outcome`` or raise ``make_error``."""
        attempt = 0
        while True:
            attempt += 1
            self.limiter.acquire()
            request = build(attempt)  # after any wait, so a signed timestamp is fresh
            outcome = self._attempt(request, attempt)
            if outcome.ok:
                self._mark(success=True)
                return outcome
            if not outcome.retryable or attempt >= self.max_attempts:
                error = self.make_error(outcome)
                self._mark(success=False, error=str(error))
                raise error
            self.sleep(self.backoff(attempt, outcome.retry_after))

    def _attempt(self, request: HttpRequest, attempt: int) -> Outcome:
        started = time.perf_counter()
        try:
            response = self.session.request(
                request.method,
                request.url,
                params=request.params or None,
                data=request.body,
                headers=request.headers,
                timeout=self.timeout,
            )
        except (requests.Timeout, requests.ConnectionError) as exc:
            kind = "timeout" if isinstance(exc, requests.Timeout) else "connection error"
            outcome = Outcome(
                ok=False, retryable=True, exception=exc,
                message=f"{kind}: {scrub(exc, self.secret_values())}",
            )
        except requests.RequestException as exc:
            outcome = Outcome(ok=False, retryable=False, exception=exc,
                              message=scrub(f"{type(exc).__name__}: {exc}", self.secret_values()))
        else:
            outcome = self.interpret(response)
            outcome.response = response
        duration_ms = int((time.perf_counter() - started) * 1000)
        self._log(request, attempt, outcome, duration_ms)
        return outcome

    def _log(self, request: HttpRequest, attempt: int, outcome: Outcome, duration_ms: int) -> None:
        from returnsync.models import ApiCall

        try:
            with _savepoint_if_in_transaction():
                ApiCall.objects.create(
                    connection_id=self.connection.pk,
                    method=request.method.upper()[:10],
                    path=urlsplit(request.url).path[:500],
                    http_status=outcome.http_status,
                    api_code=str(outcome.api_code or "")[:32],
                    duration_ms=max(0, duration_ms),
                    attempt=min(attempt, 32767),
                    request_id=(outcome.request_id or "")[:100],
                    error="" if outcome.ok else scrub(outcome.message, self.secret_values()),
                )
        except Exception:  # the call log must never break the call itself
            log.exception("could not write ApiCall for connection %s", self.connection.pk)

    def _mark(self, *, success: bool, error: str = "") -> None:
        from returnsync.models import Connection

        now = timezone.now()
        if success:
            last_ok, last_err = self.connection.last_success_at, self.connection.last_error_at
            recent = last_ok is not None and (now - last_ok).total_seconds() < 30
            if recent and (last_err is None or last_err < last_ok):
                return  # healthy and recorded a moment ago: spare the UPDATE
            fields = {"last_success_at": now}
        else:
            fields = {"last_error_at": now, "last_error": scrub(error, self.secret_values())}
        for name, value in fields.items():
            setattr(self.connection, name, value)
        try:
            with _savepoint_if_in_transaction():
                Connection.objects.filter(pk=self.connection.pk).update(**fields)
        except Exception:
            log.exception("could not update health of connection %s", self.connection.pk)
