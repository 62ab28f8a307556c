"""Secrets for a local run, generated once into the git-ignored ``var/`` folder.

Production sets SECRET_KEY and FIELD_ENCRYPTION_KEY in the environment; a fresh clone
needs nothing: the first process to start writes a key, every later one reads it.
"""
from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path


def dev_secret(var_dir: Path, name: str, generate: Callable[[], str]) -> str:
    path = var_dir / name
    if path.exists():
        return path.read_text().strip()
    var_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=var_dir, prefix=f".{name}.")
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(generate())
        try:
            os.link(tmp, path)  # atomic: of two processes starting at once, one key wins
        except FileExistsError:
            pass
    finally:
        os.unlink(tmp)
    return path.read_text().strip()
