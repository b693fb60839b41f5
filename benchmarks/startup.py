"""Start-up of the real app in fresh processes (issue 15): process start -> window shown, and ->
model ready with the tiny synthetic model; and a second launch that hands a file to the running
window (process start -> exit). Medians of N fresh processes each, side by side with the floor
(a bare Python that imports Qt's widgets) and with what the old start paid before any window
(importing mlx-lm's package, which pulls transformers and, where installed, torch).

    .venv/bin/python -m benchmarks.startup [--runs 5] [--json out.json]

Targets on this machine: <= 1.5 s to the window, <= 0.3 s for the hand-over. The CPU is shared
with whatever else runs: the header prints the load average.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from app.startup_trace import TRACE_ENV
from app.startup_trace import read as read_trace

ROOT = Path(__file__).resolve().parents[1]
WINDOW_TARGET_S, HANDOVER_TARGET_S = 1.5, 0.3
WAIT_S = 120.0


def _env(trace: Path) -> dict[str, str]:
    return {**os.environ, "QT_QPA_PLATFORM": "offscreen", TRACE_ENV: str(trace)}


def _events(trace: Path) -> dict[str, float]:
    return {event: e["t"] for event, e in read_trace(trace).items()}


def _wait(trace: Path, event: str, proc: subprocess.Popen[bytes]) -> float:
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        t = _events(trace).get(event)
        if t is not None:
            return t
        if proc.poll() is not None:
            raise SystemExit(f"the app exited ({proc.returncode}) before {event}")
        time.sleep(0.01)
    raise SystemExit(f"no {event} within {WAIT_S} s")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _app(work: Path, run: int, model: Path) -> tuple[float, float, subprocess.Popen[bytes]]:
    trace = work / f"start-{run}.jsonl"
    t0 = time.time()
    proc = subprocess.Popen(
        [sys.executable, "-m", "app.main", "--model", str(model), "--data-dir", str(work / "data")],
        cwd=ROOT, env=_env(trace), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    ready = _wait(trace, "model_ready", proc)
    return _events(trace)["window_shown"] - t0, ready - t0, proc


def _handover(work: Path, run: int, note: Path) -> float:
    trace = work / f"handover-{run}.jsonl"
    t0 = time.perf_counter()
    code = subprocess.call(
        [sys.executable, "-m", "app.main", "--data-dir", str(work / "data"), str(note)],
        cwd=ROOT, env=_env(trace), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    elapsed = time.perf_counter() - t0
    if code != 0 or "handed_over" not in _events(trace):
        raise SystemExit(f"launch {run} did not hand its file over (exit {code})")
    return elapsed


def _python(code: str) -> float:
    t0 = time.perf_counter()
    subprocess.run([sys.executable, "-c", code], check=True, env=_env(Path(os.devnull)))
    return time.perf_counter() - t0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--runs", type=int, default=5)
    p.add_argument("--json", type=Path)
    args = p.parse_args(argv)
    print(f"load average {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs, {args.runs} runs each")
    with tempfile.TemporaryDirectory(prefix="startup-") as tmp:
        work = Path(tmp)
        model = work / "tiny"
        subprocess.run(
            [sys.executable, "-m", "engine.testing.synthetic", str(model), "--preset", "tiny"],
            cwd=ROOT, check=True, stdout=subprocess.DEVNULL,
        )  # fmt: skip
        note = work / "note.txt"
        note.write_text("a file for the running window", encoding="utf-8")
        windows, readies, handovers = [], [], []
        for run in range(args.runs):
            window, ready, proc = _app(work, run, model)
            windows.append(window)
            readies.append(ready)
            if run == args.runs - 1:  # the last window stays open for the hand-overs
                handovers = [_handover(work, i, note) for i in range(args.runs)]
            _stop(proc)
        floor = [_python("import PySide6.QtWidgets") for _ in range(args.runs)]
        old = [_python("import mlx_lm") for _ in range(args.runs)]
    result: dict[str, Any] = {
        "window_s": statistics.median(windows),
        "ready_s": statistics.median(readies),
        "handover_s": statistics.median(handovers),
        "python_qt_floor_s": statistics.median(floor),
        "import_mlx_lm_s": statistics.median(old),
    }
    print(f"window shown      {result['window_s']:6.2f} s  (target <= {WINDOW_TARGET_S} s)")
    print(f"model ready       {result['ready_s']:6.2f} s  (tiny model)")
    print(f"hand-over         {result['handover_s']:6.2f} s  (target <= {HANDOVER_TARGET_S} s)")
    print(f"floor: python + import PySide6.QtWidgets   {result['python_qt_floor_s']:6.2f} s")
    print(f"old cost before the window: import mlx_lm {result['import_mlx_lm_s']:6.2f} s")
    print(
        f"ratios: window / floor {result['window_s'] / result['python_qt_floor_s']:.1f}x, "
        f"hand-over / floor {result['handover_s'] / result['python_qt_floor_s']:.1f}x, "
        f"window / old import {result['window_s'] / result['import_mlx_lm_s']:.2f}x"
    )
    met = result["window_s"] <= WINDOW_TARGET_S and result["handover_s"] <= HANDOVER_TARGET_S
    print("targets met" if met else "TARGETS MISSED")
    if args.json:
        args.json.write_text(json.dumps(result, indent=2), encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
