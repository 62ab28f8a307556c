"""What every sandbox shares, written once: fault settings (``faults_clean``, seeded dice
``fault_rng``) and the webhook outbox: every fake server queues the webhooks it would send
as rows, and ``deliver`` POSTs them with the delivery faults a real sender shows
(dropped, duplicated, reordered), leaving a failure pending for the next call.

Each sandbox keeps its own outbox table (fields ``status`` with the values below,
``attempts``, ``last_status_code``, ``last_error``, ``delivered_at``, ``body``) and says
how its sender signs, where it sends and when it gives up, through an :class:`Outbox`.
"""
from __future__ import annotations

import random
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import requests
from django.utils import timezone

PENDING, DELIVERED, DROPPED, FAILED = "pending", "delivered", "dropped", "failed"


@dataclass(frozen=True)
class Outbox:
    """How one sandbox sends its webhooks.

    ``sender(row)``: the account/app a row belongs to (its faults and its URL);
    ``url(sender)``, ``faults(sender) -> dict`` (``drop_webhooks`` and
    ``duplicate_webhooks`` probabilities, ``reorder_webhooks``, ``seed``);
    ``event_id(row)``: seeds the row's fault dice; ``headers(sender, row, body) -> dict``:
    the signature; ``give_up(row) -> bool``: after a failed attempt, stop trying;
    ``attempt_logged(row, status_code, error, duplicate)``: optional per-attempt record.
    """

    sender: Callable[[Any], Any]
    url: Callable[[Any], str]
    faults: Callable[[Any], dict]
    event_id: Callable[[Any], str]
    headers: Callable[[Any, Any, bytes], dict]
    give_up: Callable[[Any], bool]
    attempt_logged: Callable[..., None] | None = None


def fault_rng(faults: dict, *parts) -> random.Random:
    """Reproducible dice when the faults carry a ``seed``."""
    seed = (faults or {}).get("seed")
    return random.Random() if seed is None else random.Random("|".join(map(str, (seed, *parts))))


def faults_clean(faults: dict, known) -> dict:
    """Fault settings as stored: unknown keys refused, the ones switched off dropped."""
    unknown = set(faults) - set(known)
    if unknown:
        raise ValueError(f"Unknown fault(s): {', '.join(sorted(unknown))}")
    return {k: v for k, v in faults.items() if v not in (None, 0, 0.0, False) or k == "seed"}


def _post(session, url: str, body: bytes, headers: dict, timeout: float) -> tuple[int | None, str]:
    try:
        response = session.post(url, data=body, headers={"Content-Type": "application/json", **headers},
                                timeout=timeout)
    except requests.RequestException as exc:
        return None, f"{type(exc).__name__}: {exc}"[:500]
    return response.status_code, "" if 200 <= response.status_code < 300 else response.text[:500]


def deliver(rows: Iterable, outbox: Outbox, *, session=None, timeout: float = 5.0) -> int:
    """POST pending ``rows`` (oldest first); returns how many were delivered."""
    session = session or requests.Session()
    batches: dict[Any, list] = {}
    for row in rows:
        batches.setdefault(outbox.sender(row), []).append(row)
    delivered = 0
    for sender, batch in batches.items():
        faults = outbox.faults(sender) or {}
        if faults.get("reorder_webhooks"):
            fault_rng(faults, outbox.event_id(batch[0]), "reorder").shuffle(batch)
        for row in batch:
            dice = fault_rng(faults, outbox.event_id(row))
            drop = dice.random() < float(faults.get("drop_webhooks") or 0)
            duplicate = dice.random() < float(faults.get("duplicate_webhooks") or 0)
            if row.attempts == 0 and drop:
                row.status, row.last_error = DROPPED, "dropped (fault injection)"
                row.save(update_fields=["status", "last_error"])
                if outbox.attempt_logged:
                    outbox.attempt_logged(row, None, row.last_error, False)
                continue
            body = row.body.encode()
            headers = outbox.headers(sender, row, body)
            ok = False
            for n in range(2 if duplicate and row.attempts == 0 else 1):
                code, error = _post(session, outbox.url(sender), body, headers, timeout)
                row.attempts += 1
                row.last_status_code, row.last_error = code, error
                ok = ok or (code is not None and 200 <= code < 300)
                if outbox.attempt_logged:
                    outbox.attempt_logged(row, code, error, n > 0)
            if ok:
                row.status, row.delivered_at = DELIVERED, timezone.now()
                delivered += 1
            elif outbox.give_up(row):
                row.status = FAILED
            row.save(update_fields=["status", "attempts", "last_status_code", "last_error", "delivered_at"])
    return delivered
