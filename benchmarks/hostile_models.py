"""Hostile model folders and Hub listings: how each is refused, how fast, with how much memory.

    .venv/bin/python -m benchmarks.hostile_models [--only CASE ...] [--workdir DIR] [--timeout S]

Runs every case of engine/testing/hostile_models.py: config.json values out of range (a billion
layers, NaN, infinity, a string where an object belongs), config.json and the index as a FIFO or
/dev/zero or deeply nested JSON, lying safetensors headers (lengths past the file, lists, wrong
dtypes, overlapping tensors), and file lists from a loopback Hub with escaping hashes, NUL or
'..' names. A folder goes through every check load_model makes before it reads tensor bytes
(config, index, each header; tests/hostile runs load_model itself); a listing through
plan_download and download, with the tree around the model folder compared before and after.
Each case runs on a thread with a timeout, so a case that hangs is reported as such. Peak MiB is
the Python heap's high-water mark during the case (tracemalloc). The exit status is 1 if any case
was not refused as expected.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

from engine.testing.hostile_models import FOLDER_CASES, LISTING_CASES, Row, run_all


def table(rows: list[Row], width: int = 100) -> str:
    lines = [f"{'case':<24} {'outcome':<{width}} {'seconds':>8} {'peak MiB':>9}"]
    for row in rows:
        outcome = row.outcome.replace("\n", " ")
        if len(outcome) > width:
            outcome = outcome[: width - 1] + "…"
        lines.append(f"{row.case:<24} {outcome:<{width}} {row.seconds:>8.3f} {row.peak_mib:>9.1f}")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    names = [c.name for c in FOLDER_CASES] + [c.name for c in LISTING_CASES]
    parser.add_argument("--only", nargs="+", choices=names, metavar="CASE", help="cases to run")
    parser.add_argument("--workdir", type=Path, help="where to build the cases (default: temp)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds before a case hangs")
    args = parser.parse_args(argv)
    with tempfile.TemporaryDirectory(dir=args.workdir) as tmp:
        rows = run_all(Path(tmp), only=args.only, timeout_s=args.timeout)
    print(table(rows))
    ok = sum(r.outcome.startswith("ok: ") for r in rows)
    print(f"{ok} of {len(rows)} cases refused as expected.")
    return 0 if ok == len(rows) else 1


if __name__ == "__main__":
    sys.exit(main())
