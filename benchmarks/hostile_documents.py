"""Hostile documents through the real reader pool: outcome, time and the reader's peak memory.

    .venv/bin/python -m benchmarks.hostile_documents              # the app's default limits
    .venv/bin/python -m benchmarks.hostile_documents --quick      # the test suite's tight limits

Each case (engine/testing/hostile_documents.py: zip bombs, quadratic HTML, PDFs with a shared
stream, 100,000 pages or slow pages, a giant line, binary junk) is written to a temporary folder
and read by one reader process at a time, under DocumentLimits. The table shows what happened
(text, or the limit that refused it), the wall time from starting the reader to its answer
(including the ~0.2 s start of the process) and the reader's peak resident memory (Linux:
sampled every 0.1 s and reported by the reader itself; the app's own memory never grows).

With the defaults the slow-PDF case runs until the 60 s limit stops it; --quick uses the limits
of tests/hostile/test_documents.py (5 s in all, 1 s a page). Other jobs on a shared machine
stretch the times: the load average is printed first.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from engine.documents import DocumentLimits
from engine.testing.hostile_documents import Measurement, format_table, measure

QUICK_LIMITS = DocumentLimits(seconds=5.0, page_seconds=1.0)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="benchmarks.hostile_documents", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="the test suite's tight limits")
    args = parser.parse_args(argv)
    limits = QUICK_LIMITS if args.quick else DocumentLimits()
    print(
        f"load average {os.getloadavg()[0]:.1f}; limits: {limits.seconds:g} s, "
        f"{limits.page_seconds:g} s a page, {limits.memory_bytes >> 20:,} MiB"
    )

    def progress(m: Measurement) -> None:
        print(f"  {m.case}: {m.outcome} in {m.seconds:.2f} s", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="hostile-") as folder:
        results = measure(Path(folder), limits=limits, report=progress)
    print(format_table(results))
    unexpected = [m.case for m in results if not m.as_expected]
    if unexpected:
        print(f"not as expected: {', '.join(unexpected)}")
    return 1 if unexpected else 0


if __name__ == "__main__":
    sys.exit(main())
