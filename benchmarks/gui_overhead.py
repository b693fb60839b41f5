"""Tokens/s through the desktop app against the engine alone, on the same checkpoint and tokens.

Goal: the app streams an answer at >= 0.95x the engine's own speed, and its UI thread stays
responsive while it does.

    .venv/bin/python -m benchmarks.gui_overhead                 # warm-up + 3 runs per side
    .venv/bin/python -m benchmarks.gui_overhead --repeat 5 --json results.json

Method:
- One synthetic checkpoint (hidden 512, 8 experts top-4, 4 layers, the real 201,088-token
  vocabulary, float32 on the CPU) with a synthetic tokenizer, written once to
  benchmarks/.cache/gui-small/ and reused while its config matches.
- Both sides run the real model, KV cache, harmony parser and ChatSession, with the same prompt
  (the app's developer instructions + one user message). The model's tokens are scripted
  (engine.testing.scripted.ScriptedSampler: a short analysis, then a long Markdown answer with
  paragraphs, a code block and a table), so both sides produce exactly the same tokens; each
  step still computes the full forward pass and its log-probabilities, as greedy decoding would.
- Engine alone: ChatSession.send iterated on one thread; timestamps are taken as its events
  arrive. Through the GUI: the real MainWindow (QT_QPA_PLATFORM=offscreen unless it is
  set) with the real EngineWorker thread, SQLite history and Markdown view; the user message is
  typed and Return pressed, and timestamps are taken when the window has applied an update
  (a slot on EngineClient.turn_progressed connected after the window's own) and when it has
  finished the turn (ChatController.turn_completed).
- decode tok/s = (answer tokens - 1) / (first answer text seen -> turn finished), the same
  formula on both sides. The window sees text in batches (the worker flushes every 40 ms), so
  its first answer text can arrive up to one flush late, which shortens its interval slightly:
  end-to-end tok/s (generated tokens / (send -> turn finished)) has no such bias.
- UI stall: a 10 ms QTimer (precise) on the UI thread records how late each tick fires, from the
  key press to turn_completed; the table reports the longest and the 99th percentile.
- Each side runs in its own subprocess: one warm-up turn, then --repeat measured turns, each in
  a new chat (a new ChatSession, so every turn prefills the same prompt from an empty cache).
  The table shows medians.

Run time on 2 x86-64 cores, MLX 0.32.4 on the CPU, while other jobs shared them (load average
1.7-3.4): 4.6 minutes for the default, most of it the 8 turns at ~10 tok/s; writing the 0.4 GB
checkpoint the first time adds about 8 s. --repeat N costs about 35 s per extra run.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any

from engine.testing.synthetic import small_config, write_checkpoint
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "benchmarks" / ".cache"
MODEL_NAME = "gui-small"
INSTRUCTIONS_FILE = ROOT / "resources" / "prompts" / "developer.md"
GOAL = 0.95
HEARTBEAT_MS = 10
TURN_TIMEOUT_S = 300.0

CONFIG = small_config()

PROMPT = "How does MXFP4 store the expert weights of gpt-oss, and what does it cost to decode?"

ANALYSIS = "Explain the block layout, the scale, and what it saves; add code and a table."

# About 250 tokens with the synthetic tokenizer (which has few merges: ~1.7 characters a token).
ANSWER = """\
**MXFP4** stores 32 weights as 4-bit codes that share one power-of-two scale.

```python
def dequant(code: int, scale: int) -> float:
    return FP4[code] * 2.0 ** (scale - 127)
```

| tensor | format | bits |
|---|---|---:|
| experts | MXFP4 | 4.25 |
| attention | bf16 | 16 |

Only the *experts* are quantized, so each token reads far fewer bytes.
"""


# --- the checkpoint and the script -----------------------------------------------------------


def ensure_model(cache_dir: Path = CACHE_DIR) -> Path:
    """The checkpoint plus a synthetic tokenizer, written once and reused while it matches."""
    out = cache_dir / MODEL_NAME
    config_file = out / "config.json"
    made = all((out / name).is_file() for name in ("model.safetensors", "tokenizer.json"))
    if made and json.loads(config_file.read_text()) == CONFIG:
        return out
    if out.exists():
        shutil.rmtree(out)
    _log(f"writing the checkpoint and tokenizer to {out}")
    write_checkpoint(out, CONFIG)
    write_synthetic_tokenizer(out)
    return out


def script_ids(tokenizer: Any, analysis: str | None = ANALYSIS, answer: str = ANSWER) -> list[int]:
    """The ids the model 'samples': the analysis message (if any), then the final answer."""
    from engine import Message
    from engine.testing.scripted import reply_ids

    messages = [Message.assistant(analysis, channel="analysis")] if analysis else []
    return reply_ids(tokenizer, [*messages, Message.assistant(answer)])


def instructions() -> str | None:
    """The developer message the app sends (app.launch reads the same resource)."""
    return INSTRUCTIONS_FILE.read_text(encoding="utf-8") if INSTRUCTIONS_FILE.is_file() else None


def scripted_session(model: Any, tokenizer: Any, history: Sequence[Any], ids: list[int]) -> Any:
    from engine import ChatSession
    from engine.testing.scripted import ScriptedSampler

    return ChatSession.from_messages(
        model, tokenizer, history, instructions=instructions(), sampler=ScriptedSampler(ids)
    )


# --- one measured turn -------------------------------------------------------------------------


@dataclass(frozen=True)
class Run:
    prompt_tokens: int
    generated_tokens: int
    answer_tokens: int
    first_answer_s: float  # send -> first answer text seen
    end_to_end_s: float  # send -> turn finished
    decode_tok_s: float  # (answer tokens - 1) / (first answer text -> turn finished)
    end_to_end_tok_s: float  # generated tokens / end_to_end_s
    answer_sha: str  # the answer text as seen, to check both sides saw the same
    stall_max_ms: float = 0.0  # GUI only: the longest heartbeat delay on the UI thread
    stall_max_at_s: float = 0.0  # when the longest one ended, after send
    stall_p99_ms: float = 0.0
    stalls_over_50ms: int = 0


def make_run(
    stats: dict[str, Any], t_send: float, t_first: float, t_end: float, answer: str
) -> Run:
    answer_tokens = int(stats["answer_tokens"])
    generated = int(stats["generated_tokens"])
    return Run(
        prompt_tokens=int(stats["prompt_tokens"]),
        generated_tokens=generated,
        answer_tokens=answer_tokens,
        first_answer_s=t_first - t_send,
        end_to_end_s=t_end - t_send,
        decode_tok_s=(answer_tokens - 1) / max(t_end - t_first, 1e-9),
        end_to_end_tok_s=generated / max(t_end - t_send, 1e-9),
        answer_sha=hashlib.sha256(answer.encode()).hexdigest()[:16],
    )


def load(model_dir: Path) -> tuple[Any, Any]:
    """What the app's loader does with profile "full": the model and the tokenizer."""
    from engine import HarmonyTokenizer, load_model

    return load_model(model_dir, profile="full"), HarmonyTokenizer.from_model_dir(model_dir)


def engine_turn(model: Any, tokenizer: Any, ids: list[int], prompt: str = PROMPT) -> Run:
    """ChatSession.send iterated on this thread, with a new session (empty cache)."""
    from engine import ChannelDelta, TurnFinished

    session = scripted_session(model, tokenizer, (), ids)
    answer, t_first, stats = "", 0.0, None
    t_send = time.perf_counter()
    for event in session.send(prompt, threading.Event()):
        if isinstance(event, ChannelDelta) and event.channel == "final" and event.text:
            if not answer:
                t_first = time.perf_counter()
            answer += event.text
        elif isinstance(event, TurnFinished):
            stats = asdict(event.stats)
    t_end = time.perf_counter()
    if stats is None or not answer:
        raise RuntimeError("the engine turn ended without an answer")
    return make_run(stats, t_send, t_first, t_end, answer)


def run_engine(model_dir: Path, repeat: int, emit: Callable[[Run], None]) -> None:
    model, tokenizer = load(model_dir)
    ids = script_ids(tokenizer)
    engine_turn(model, tokenizer, ids)  # warm-up
    for _ in range(repeat):
        emit(engine_turn(model, tokenizer, ids))


class Heartbeat:
    """A precise 10 ms timer on the UI thread that records how late each tick fires."""

    def __init__(self, interval_ms: int = HEARTBEAT_MS) -> None:
        from PySide6.QtCore import Qt, QTimer

        self.interval_s = interval_ms / 1000
        self.lateness_ms: list[float] = []
        self.ticks: list[float] = []  # when each tick fired (perf_counter)
        self._last: float | None = None
        self._timer = QTimer()
        self._timer.setTimerType(Qt.TimerType.PreciseTimer)
        self._timer.setInterval(interval_ms)
        self._timer.timeout.connect(self._tick)

    def start(self) -> None:
        self.lateness_ms, self.ticks, self._last = [], [], time.perf_counter()
        self._timer.start()

    def stop(self) -> None:
        self._timer.stop()
        self._tick()  # a stall that lasted until the end counts too

    def _tick(self) -> None:
        now = time.perf_counter()
        if self._last is not None:
            self.lateness_ms.append(max(0.0, (now - self._last - self.interval_s) * 1000))
            self.ticks.append(now)
        self._last = now

    def summary(self, since: float) -> tuple[float, float, float, int]:
        """Longest lateness (ms), when it ended (s after `since`), p99 (ms), ticks > 50 ms."""
        if not self.lateness_ms:
            return 0.0, 0.0, 0.0, 0
        worst = max(range(len(self.lateness_ms)), key=self.lateness_ms.__getitem__)
        late = sorted(self.lateness_ms)
        p99 = late[min(len(late) - 1, int(0.99 * len(late)))]
        over = sum(1 for x in late if x > 50)
        return late[-1], self.ticks[worst] - since, p99, over


def open_window(
    model_dir: Path, data_dir: Path, make_ids: Callable[[Any], list[int]] = script_ids
) -> tuple[Any, list[Any]]:
    """The real window, engine thread and history (app.launch.build) on `data_dir`, its model
    loaded; every new chat gets a new ChatSession scripted with make_ids(tokenizer). Returns
    the window and the list of sessions made so far. Needs the QApplication to exist."""
    from PySide6.QtCore import QEventLoop

    from app.launch import build

    sessions: list[Any] = []

    def factory(model: Any, tokenizer: Any, history: Sequence[Any]) -> Any:
        sessions.append(scripted_session(model, tokenizer, history, make_ids(tokenizer)))
        return sessions[-1]

    args = argparse.Namespace(model=None, data_dir=str(data_dir), profile="full", files=[])
    window = build(args, session_factory=factory)
    window.show()
    loop = QEventLoop()
    window.engine.model_loaded.connect(loop.quit)
    window.engine.load_failed.connect(loop.quit)
    window.load_model(str(model_dir))
    loop.exec()
    if window.engine.model is None:
        close_window(window)
        raise RuntimeError("the model did not load in the window")
    return window, sessions


def close_window(window: Any) -> None:
    """What quitting does: close the window, stop the engine thread, close the history."""
    window.close()
    window.engine.shutdown()
    window.store.close()


def run_gui(model_dir: Path, repeat: int, emit: Callable[[Run], None]) -> None:
    os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
    from app.application import Application

    app = Application([sys.argv[0]])
    with tempfile.TemporaryDirectory(prefix="gui-overhead-") as data_dir:
        window, sessions = open_window(model_dir, Path(data_dir))
        heartbeat = Heartbeat()
        try:
            for i in range(repeat + 1):
                run = gui_turn(window, heartbeat)
                if i > 0:  # the first turn is the warm-up
                    emit(run)
        finally:
            close_window(window)
        if len(sessions) != repeat + 1:
            raise RuntimeError(f"expected a new session per chat, got {len(sessions)}")
    app.quit()


def gui_turn(window: Any, heartbeat: Heartbeat, prompt: str = PROMPT) -> Run:
    """Type the prompt in a new chat, press Return, and time the answer as the window sees it."""
    from PySide6.QtCore import QEventLoop, Qt, QTimer
    from PySide6.QtTest import QTest

    from app.turn_stream import TurnResult, TurnUpdate

    window.controller.new_chat()
    window.composer.set_text(prompt)
    seen: dict[str, Any] = {}
    loop = QEventLoop()

    # Connected after the window's own slots, so these run once the window has applied each.
    def progressed(update: TurnUpdate) -> None:
        if update.answer and "first" not in seen:
            seen["first"] = time.perf_counter()

    def completed(result: TurnResult) -> None:
        seen["end"] = time.perf_counter()
        seen["result"] = result
        loop.quit()

    window.engine.turn_progressed.connect(progressed)
    window.controller.turn_completed.connect(completed)
    timeout = QTimer()
    timeout.setSingleShot(True)
    timeout.timeout.connect(loop.quit)
    timeout.start(int(TURN_TIMEOUT_S * 1000))
    heartbeat.start()
    t_send = time.perf_counter()
    QTest.keyClick(window.composer.input, Qt.Key.Key_Return)
    if "end" not in seen:
        loop.exec()
    heartbeat.stop()
    timeout.stop()
    window.engine.turn_progressed.disconnect(progressed)
    window.controller.turn_completed.disconnect(completed)
    result = seen.get("result")
    if result is None or result.error is not None or result.status != "complete":
        raise RuntimeError(f"the GUI turn did not complete: {result}")
    widget = window.view.assistant(result.message_id)
    answer = widget.answer_text() if widget is not None else ""
    run = make_run(result.stats, t_send, seen.get("first", seen["end"]), seen["end"], answer)
    stall_max, stall_at, stall_p99, over_50 = heartbeat.summary(t_send)
    fields_ = asdict(run) | {
        "stall_max_ms": stall_max,
        "stall_max_at_s": stall_at,
        "stall_p99_ms": stall_p99,
        "stalls_over_50ms": over_50,
    }
    return Run(**fields_)


# --- the two subprocesses and the table ------------------------------------------------------


def worker_main(side: str, model_dir: Path, repeat: int) -> None:
    """In the subprocess: one JSON line per measured run on stdout."""

    def emit(run: Run) -> None:
        print(json.dumps(asdict(run)), flush=True)

    if side == "engine":
        run_engine(model_dir, repeat, emit)
    else:
        run_gui(model_dir, repeat, emit)


def measure(side: str, model_dir: Path, repeat: int) -> list[Run]:
    cmd = [sys.executable, "-m", "benchmarks.gui_overhead", "--worker", side]
    cmd += ["--model", str(model_dir), "--repeat", str(repeat)]
    env = os.environ | {"QT_QPA_PLATFORM": os.environ.get("QT_QPA_PLATFORM", "offscreen")}
    _log(f"{side}: warm-up + {repeat} runs")
    done = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.stderr.write(done.stderr)
        raise RuntimeError(f"the {side} worker failed (exit {done.returncode})")
    names = {f.name for f in fields(Run)}
    runs = []
    for line in done.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            runs.append(Run(**{k: v for k, v in data.items() if k in names}))
    return runs


def median(runs: Sequence[Run], name: str) -> float:
    return float(statistics.median(float(getattr(r, name)) for r in runs))


def report(engine: Sequence[Run], gui: Sequence[Run]) -> tuple[str, bool]:
    """The comparison table and whether decode through the GUI met the goal."""
    rows = [
        ("decode tok/s (answer)", "decode_tok_s", "{:.1f}"),
        ("end-to-end tok/s", "end_to_end_tok_s", "{:.1f}"),
        ("end-to-end s", "end_to_end_s", "{:.2f}"),
        ("first answer text s", "first_answer_s", "{:.2f}"),
    ]
    lines = [
        f"{'metric':<24} {'engine alone':>13} {'through GUI':>12} {'GUI/engine':>11}",
        f"{'-' * 24} {'-' * 13} {'-' * 12} {'-' * 11}",
    ]
    for label, name, fmt in rows:
        e, g = median(engine, name), median(gui, name)
        ratio = g / e if e else float("nan")
        lines.append(f"{label:<24} {fmt.format(e):>13} {fmt.format(g):>12} {ratio:>10.3f}x")
    worst = max(gui, key=lambda r: r.stall_max_ms)
    lines.append(
        f"{'UI stall, longest ms':<24} {'-':>13} {worst.stall_max_ms:>12.1f}"
        f"   (ended {worst.stall_max_at_s:.2f} s after send)"
    )
    lines.append(f"{'UI stall, p99 ms':<24} {'-':>13} {median(gui, 'stall_p99_ms'):>12.1f}")
    lines.append(
        f"{'UI ticks > 50 ms late':<24} {'-':>13} {sum(r.stalls_over_50ms for r in gui):>12d}"
    )
    lines.append("(ratios are GUI/engine: for tok/s higher is better, for seconds lower)")
    decode = median(gui, "decode_tok_s") / median(engine, "decode_tok_s")
    e2e = median(gui, "end_to_end_tok_s") / median(engine, "end_to_end_tok_s")
    ok = decode >= GOAL
    lines.append(
        f"verdict: {'PASS' if ok else 'FAIL'} - decode through the GUI is {decode:.3f}x the "
        f"engine alone (goal >= {GOAL:.2f}x; end-to-end {e2e:.3f}x)"
    )
    return "\n".join(lines), ok


def check_same_work(engine: Sequence[Run], gui: Sequence[Run]) -> None:
    keys = {(r.prompt_tokens, r.generated_tokens, r.answer_tokens, r.answer_sha) for r in engine}
    keys |= {(r.prompt_tokens, r.generated_tokens, r.answer_tokens, r.answer_sha) for r in gui}
    if len(keys) != 1:
        raise RuntimeError(f"the two sides did different work: {sorted(keys)}")


def _log(text: str) -> None:
    print(f"[gui_overhead] {text}", file=sys.stderr, flush=True)


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--repeat", type=int, default=3, help="measured runs per side (default 3)")
    p.add_argument("--json", type=Path, help="also write every run to this file")
    p.add_argument("--worker", choices=("engine", "gui"), help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.repeat < 1:
        p.error("--repeat must be at least 1")
    if args.worker:
        worker_main(args.worker, args.model, args.repeat)
        return 0
    started = time.perf_counter()
    model_dir = ensure_model()
    load = os.getloadavg()
    print(
        f"gui_overhead: {platform.machine()}, {os.cpu_count()} cores, load average "
        f"{load[0]:.2f}; model: hidden 512, 8 experts, 4 layers, vocab 201,088; "
        f"median of {args.repeat} runs after one warm-up"
    )
    engine = measure("engine", model_dir, args.repeat)
    gui = measure("gui", model_dir, args.repeat)
    check_same_work(engine, gui)
    first = engine[0]
    print(
        f"same work on both sides: {first.prompt_tokens} prompt tokens, {first.generated_tokens} "
        f"generated ({first.answer_tokens} in the answer), identical answer text"
    )
    table, ok = report(engine, gui)
    print(table)
    print(f"({time.perf_counter() - started:.0f} s)")
    if args.json:
        data = {"engine": [asdict(r) for r in engine], "gui": [asdict(r) for r in gui]}
        args.json.write_text(json.dumps(data, indent=2) + "\n")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
