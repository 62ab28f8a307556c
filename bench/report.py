"""Print a benchmark's ratios next to the figures recorded in the README.

``make bench`` pipes each benchmark's output through ``bench/report.py <name>``: the
output passes through unchanged, then, from the last line (one JSON object), each figure
this file knows for that benchmark is printed beside the one the README records in a
marker comment ``<!-- bench-recorded <name> <database>: key=value ... -->``. Printed, not
asserted: the machine is shared and noisy; a ratio far below its recorded figure is the
signal to profile (see the README's benchmark section).
"""
from __future__ import annotations

import json
import re
import sys
from pathlib import Path

README = Path(__file__).resolve().parent.parent / "README.md"
# The figures worth watching per benchmark (ratios first).
KEYS = {
    "ingest": ("ratio_to_raw_insert", "returns_per_s", "new_returns_per_s", "webhook_p99_ms"),
    "detect": ("full_ratio_to_floor", "incremental_ratio_to_floor", "full_pass_s", "incremental_s"),
    "web": ("ratio_p95_to_target", "server_p95_ms"),
    "soak": ("events_per_s", "webhook_p99_ms", "exception_open_p95_s", "ok"),
}
MARKER = re.compile(r"<!-- bench-recorded (\S+) (\S+): (.*?) -->")


def recorded(name: str, database: str) -> dict[str, str]:
    for found, db, pairs in MARKER.findall(README.read_text()):
        if found == name and db == database:
            return dict(pair.split("=", 1) for pair in pairs.split())
    return {}


def main() -> int:
    name = sys.argv[1] if len(sys.argv) > 1 else "?"
    last = ""
    for line in sys.stdin:
        sys.stdout.write(line)
        if line.lstrip().startswith("{"):
            last = line
    if not last:
        print(f"-- {name}: no JSON result line")
        return 1
    figures = json.loads(last)
    database = str(figures.get("database", "?")).split()[0].split("(")[0]
    book = recorded(name, database)
    print(f"-- {name} on {database}: now vs README")
    for key in KEYS.get(name, ()):
        if key in figures:
            print(f"   {key:28s} {figures[key]!s:>10}   README {book.get(key, '—'):>10}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
