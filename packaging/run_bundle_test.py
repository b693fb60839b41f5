"""`make bundle-test`: launch the built program with --self-test, offscreen, away from the source.

    python packaging/run_bundle_test.py build/dist/oss-desk/oss-desk
    python packaging/run_bundle_test.py "build/dist/OSS Desk.app/Contents/MacOS/OSS Desk" \
        --qt-platform cocoa

It runs from an empty temporary folder with PYTHONPATH, PYTHONHOME and the venv unset, so the
bundle can only use what it carries. It runs twice (cold, then warm file cache) and prints the
bundle's size and the start-up time to a shown window, measured here from process launch to
the self-test's "window" line and by the self-test itself from process start.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

TIMEOUT_S = 600
_STARTUP = re.compile(r"^startup_s: ([0-9.]+)", re.M)


@dataclass(frozen=True)
class Launch:
    returncode: int
    output: str
    to_window_s: float | None  # launch -> the "window" report line, measured by this script
    startup_s: float | None  # process start -> window shown, measured by the self-test
    total_s: float


def folder_size(path: Path) -> int:
    return sum(p.lstat().st_size for p in path.rglob("*") if p.is_file() and not p.is_symlink())


def clean_env(qt_platform: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env["QT_QPA_PLATFORM"] = qt_platform
    return env


def launch(program: Path, cwd: Path, qt_platform: str) -> Launch:
    start = time.perf_counter()
    to_window = None
    lines = []
    with subprocess.Popen(
        [str(program), "--self-test"],
        cwd=cwd,
        env=clean_env(qt_platform),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    ) as process:
        assert process.stdout is not None
        for line in process.stdout:
            if to_window is None and line.split()[:2] in (["ok", "window"], ["FAIL", "window"]):
                to_window = time.perf_counter() - start
            lines.append(line)
            print(line, end="", flush=True)
        returncode = process.wait(timeout=TIMEOUT_S)
    output = "".join(lines)
    match = _STARTUP.search(output)
    return Launch(
        returncode,
        output,
        to_window,
        float(match.group(1)) if match else None,
        time.perf_counter() - start,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("program", type=Path, help="the bundled executable")
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument(
        "--qt-platform",
        default="offscreen",
        help="e.g. cocoa on a Mac, to time a window that is really on screen",
    )
    args = parser.parse_args(argv)
    program = args.program.resolve()
    if not program.is_file():
        print(f"bundle-test: {program} does not exist; run `make bundle` first", file=sys.stderr)
        return 1
    bundle = program.parent
    size = folder_size(bundle)
    launches = []
    with tempfile.TemporaryDirectory(prefix="oss-desk-bundle-test-") as cwd:
        for i in range(args.runs):
            print(f"bundle-test: run {i + 1} of {args.runs}: {program} --self-test", flush=True)
            result = launch(program, Path(cwd), args.qt_platform)
            launches.append(result)
            if result.returncode != 0:
                print(f"bundle-test: FAILED, exit code {result.returncode}", file=sys.stderr)
                return 1
    print(f"bundle-test: bundle {bundle} is {size / 2**20:.0f} MiB")
    for i, result in enumerate(launches, start=1):
        window = f"{result.to_window_s:.2f} s" if result.to_window_s is not None else "n/a"
        inside = f"{result.startup_s:.2f} s" if result.startup_s is not None else "n/a"
        print(
            f"bundle-test: run {i}: window shown {inside} after process start (self-test), "
            f"report line {window} after launch; whole self-test {result.total_s:.1f} s"
        )
    print("bundle-test: the bundled program passed its self-test")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
