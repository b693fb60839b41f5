"""History search on 10,000 chats, per query shape: the new search against the one it replaced.

Goal (issue 18): p99 <= 100 ms for every query shape, off the UI thread, cancellable.

    .venv/bin/python -m benchmarks.history_search                    # 50 runs a shape, ~3 min
    .venv/bin/python -m benchmarks.history_search --runs 200 --old-budget 60
    .venv/bin/python -m benchmarks.history_search --chats 300 --runs 3 --old-budget 1   # smoke

Method:
- The database is built once (30-75 s) at benchmarks/.cache/history-<chats>-v<N>.sqlite3 with the
  app's own schema (HistoryStore), then filled in one transaction: each chat has two turns, a
  user message of 10-50 words, an answer of 250-600 words (~3 KB) and a reasoning of 80-300
  words. Words are drawn from English function words (45%), a topic vocabulary (Zipf), 30,000
  generated words (Zipf, 1.07) and 3% one-off identifiers such as "kqzvt481", as code and logs
  give; 5% of the chats are half Japanese, Chinese, Korean, Russian or Greek. The word
  "quokkabyte" is planted in 12 chats. 10,000 chats make 40,000 messages and ~400,000 terms.
- "new": app.history.search.search on a plain connection (what HistoryStore.search runs), and
  "searcher": the same through app.history.searcher.Searcher, from submit() on the calling
  thread to the result delivered by the search thread (read-only connection, progress handler):
  what the sidebar waits for. Both: one warm-up, then --runs timed runs; p50 and p99 of the
  wall-clock time (nearest rank), and "cpu": the median CPU time of the direct search, which
  other jobs on the machine hardly change.
- "old": the search this replaced (its query text and assembly are kept below, in this file
  only), in a child process, timed until --old-budget seconds are spent on a shape (at least
  one run). One FTS5 call can run for minutes without reaching SQLite's progress handler, so a
  child that has not answered after OLD_ABORT_S more is killed; an exception is reported.
- Typing bursts: "memory" typed one letter at a time every 30 ms and every 5 ms through the
  Searcher: the latency of the last keystroke's result, and how many results were delivered
  after a newer search had been asked for (0).

Results: 10,000 chats (195 MB), 2 x86-64 cores shared with other jobs (load 3.9), SQLite
3.40.1, 100 runs a shape; ms. "searcher" is what the sidebar waits for.

    shape                 cpu p50  searcher p50  p99   old p50    p99   old/new p99
    1 letter                  5.1           9.0  16.0     842   1,084    50x
    2 letters                13.5          27.4  39.0     988   1,157    27x
    common word               9.9          19.9  39.9     744     881    22x
    two common words         14.0          25.8  39.7     616     722    14x
    rare word                 0.7           0.9   7.6     0.5     9.1     1x
    80 repeats               11.0          26.4  44.0   > 40 s, killed
    phrase + punctuation      0.6           0.7   6.0     149     248    20x
    NUL-laden paste          14.0          32.0  51.9   OperationalError (crash dialog)
    non-Latin                 9.0          25.4  31.5     233     337    11x
    100 KB paste             10.3          28.1  40.6   > 40 s, killed

Worst p99 57 ms (the direct search, NUL-laden paste): the goal is met. Typing "memory" at 30 ms
and 5 ms a letter: the last result 60-65 ms after the last key, no out-of-date result shown.
"""

from __future__ import annotations

import argparse
import functools
import itertools
import json
import math
import os
import platform
import random
import sqlite3
import statistics
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from app.history import MATCH_END, MATCH_START, HistoryStore, SearchHit
from app.history.search import search
from app.history.searcher import Searcher, SearchResult

ROOT = Path(__file__).resolve().parent.parent
CACHE_DIR = ROOT / "benchmarks" / ".cache"
DATA_VERSION = 1  # bump when the generated text changes, so a stale cache is rebuilt
GOAL_MS = 100.0
OLD_ABORT_S = 30.0
RARE_WORD = "quokkabyte"
RARE_CHATS = 12

SHAPES: dict[str, str] = {
    "1 letter": "a",
    "2 letters": "th",
    "common word": "the",
    "two common words": "the memory",
    "rare word": RARE_WORD,
    "80 repeats": "memory " * 80,
    "phrase + punctuation": 'e.g. don\'t "parse" (C++) foo-bar, ok?',
    # UTF-16 text read as bytes: a NUL after every letter
    "NUL-laden paste": "memory cache\x00\x00".encode("utf-16-le").decode("latin-1"),
    "non-Latin": "日本語 東京",
    "100 KB paste": "",  # filled in by main(): a paragraph of the corpus, repeated
}


def _split(text: str) -> list[str]:
    return text.split()


FUNCTION_WORDS = _split(
    "the of and to a in is it that for you was with on as have but be are this not or at by from "
    "an can will we which if so do what there all would their they one more about when your has "
    "like just than then also into some could them other its only use how these may very because "
    "first should most well even much where here each such through both those after"
)
TOPIC_WORDS = _split(
    "memory model python kernel garden recipe travel budget battery network server database "
    "query index cache thread process window button sidebar search answer question reasoning "
    "token context prompt layer weight matrix vector tensor gradient loss training inference "
    "latency disk file folder path error exception crash bug test review release version update "
    "install package library function method class object string number list map tree graph sort "
    "filter merge split parse format render color font image photo video music movie book story "
    "letter email message chat friend family school teacher student lesson exam project deadline "
    "meeting calendar holiday flight hotel train ticket museum beach mountain river forest city "
    "dinner lunch coffee tea bread cheese pasta rice soup salad apple banana lemon tomato garlic "
    "pepper salt sugar butter chicken fish egg milk exercise running yoga sleep health doctor "
    "money price cost salary tax invoice bank loan insurance contract law history science physics "
    "chemistry biology math statistics economy market stock inflation company customer design "
    "interface layout margin border shadow animation keyboard"
)
OTHER_SCRIPTS = _split(
    "日本語 文章 東京 料理 旅行 天気 写真 音楽 中文 北京 学习 电脑 한국어 서울 음식 привет мир "
    "память модель город поезд книга ελληνικά θάλασσα μουσική"
)


# --- the corpus ------------------------------------------------------------------------------


class _Words:
    """Deterministic text with a realistic mix of very common, common and rare words."""

    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)
        generated: dict[str, None] = {}
        while len(generated) < 30_000:
            syllables = self.rng.randint(2, 4)
            word = "".join(
                (self.rng.choice("bcdfghjklmnprstvwz") if self.rng.random() < 0.8 else "")
                + self.rng.choice("aeiou")
                for _ in range(syllables)
            )
            generated[word + (self.rng.choice("nrst") if self.rng.random() < 0.3 else "")] = None
        self.generated = list(generated)
        self.generated_cum = list(itertools.accumulate(1 / (i + 1) ** 1.07 for i in range(30_000)))
        self.topic_cum = list(
            itertools.accumulate(1 / (i + 1) ** 0.8 for i in range(len(TOPIC_WORDS)))
        )

    def text(self, n: int, foreign: bool = False) -> str:
        rng, out = self.rng, []
        for _ in range(n):
            r = rng.random()
            if foreign and r < 0.5:
                out.append(rng.choice(OTHER_SCRIPTS))
            elif r < 0.45:
                out.append(rng.choice(FUNCTION_WORDS))
            elif r < 0.70:
                out.append(rng.choices(TOPIC_WORDS, cum_weights=self.topic_cum)[0])
            elif r < 0.97:
                out.append(rng.choices(self.generated, cum_weights=self.generated_cum)[0])
            else:
                letters = "".join(rng.choices("abcdefghijklmnopqrstuvwxyz", k=rng.randint(3, 9)))
                out.append(letters + (str(rng.randint(0, 999)) if rng.random() < 0.4 else ""))
            if rng.random() < 0.08:
                out[-1] += rng.choice(",.;:?!")
        return " ".join(out)


def build_database(path: Path, chats: int, seed: int = 18) -> None:
    """A history file with `chats` two-turn chats (see the module docstring)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    side_files = [Path(f"{partial}{suffix}") for suffix in ("-wal", "-shm", ".lock")]
    for leftover in (partial, *side_files):
        leftover.unlink(missing_ok=True)
    HistoryStore(partial).close()  # the app's schema, at the current version
    words = _Words(seed)
    rare = set(words.rng.sample(range(chats), min(RARE_CHATS, chats)))
    conn = sqlite3.connect(partial, isolation_level=None)
    conn.execute("BEGIN")
    for chat in range(chats):
        foreign = words.rng.random() < 0.05
        now = 1.7e9 + chat * 60.0
        conversation = conn.execute(
            "INSERT INTO conversations (title, title_is_auto, reasoning_effort, created_at, "
            "updated_at) VALUES (?, 1, 'medium', ?, ?)",
            (words.text(6, foreign), now, now),
        ).lastrowid
        for turn in range(2):
            question = words.text(words.rng.randint(10, 50), foreign)
            answer = words.text(words.rng.randint(250, 600), foreign)
            if chat in rare and turn == 1:
                answer += f" {RARE_WORD}"
            conn.execute(
                "INSERT INTO messages (conversation_id, position, role, content, status, "
                "created_at) VALUES (?, ?, 'user', ?, 'complete', ?)",
                (conversation, 2 * turn, question, now),
            )
            conn.execute(
                "INSERT INTO messages (conversation_id, position, role, content, reasoning, "
                "status, effort, created_at) VALUES (?, ?, 'assistant', ?, ?, 'complete', "
                "'medium', ?)",
                (conversation, 2 * turn + 1, answer, words.text(words.rng.randint(80, 300)), now),
            )
    conn.execute("COMMIT")
    conn.close()
    partial.replace(path)
    for side_file in side_files:
        side_file.unlink(missing_ok=True)


def _shape_text(conn: sqlite3.Connection, shape: str) -> str:
    if shape != "100 KB paste":
        return SHAPES[shape]
    # an answer from the corpus, pasted again and again
    row = conn.execute("SELECT content FROM messages WHERE role = 'assistant' LIMIT 1").fetchone()
    return str((row[0] + "\n") * (100_000 // (len(row[0]) + 1) + 1))


def database(chats: int) -> Path:
    path = CACHE_DIR / f"history-{chats}-v{DATA_VERSION}.sqlite3"
    if not path.exists():
        print(f"building {path.name} ({chats:,} chats) ...", flush=True)
        started = time.monotonic()
        build_database(path, chats)
        print(f"  built in {time.monotonic() - started:.0f} s", flush=True)
    return path


# --- the search this replaced (kept here only, to compare) -----------------------------------

_OLD_MESSAGE_HITS = """
SELECT m.conversation_id, m.id,
       snippet(messages_fts, 0, :start, :end, '…', :tokens),
       snippet(messages_fts, 1, :start, :end, '…', :tokens)
FROM messages_fts JOIN messages AS m ON m.id = messages_fts.rowid
WHERE messages_fts MATCH :query
ORDER BY bm25(messages_fts, 1.0, 0.5)
LIMIT :limit
"""
_OLD_TITLE_HITS = """
SELECT c.id, c.title, highlight(conversations_fts, 0, :start, :end)
FROM conversations_fts JOIN conversations AS c ON c.id = conversations_fts.rowid
WHERE conversations_fts MATCH :query
ORDER BY c.updated_at DESC
LIMIT :limit
"""


def old_search(conn: sqlite3.Connection, text: str, limit: int = 50) -> list[SearchHit]:
    terms = [
        '"' + word.replace('"', '""') + '"*'
        for word in text.split()
        if any(ch.isalnum() for ch in word)
    ]
    if not terms:
        return []
    marks = {"start": MATCH_START, "end": MATCH_END, "query": " ".join(terms), "limit": limit}
    titles = conn.execute(_OLD_TITLE_HITS, marks).fetchall()
    messages = conn.execute(_OLD_MESSAGE_HITS, {**marks, "tokens": 12, "limit": limit * 20})
    passages: dict[int, tuple[int, str, bool]] = {}
    for conversation_id, message_id, content, reasoning in messages.fetchall():
        if conversation_id not in passages:
            in_reasoning = MATCH_START not in content
            passage = reasoning if in_reasoning else content
            passages[conversation_id] = (message_id, " ".join(passage.split()), in_reasoning)
    hits: list[SearchHit] = []
    for conversation_id, title, highlighted in titles:
        message_id, snippet, in_reasoning = passages.pop(
            conversation_id, (None, highlighted, False)
        )
        hits.append(SearchHit(conversation_id, title, snippet, message_id, in_reasoning))
    if passages:
        ids = list(passages)
        title_of = dict(
            conn.execute(
                f"SELECT id, title FROM conversations WHERE id IN ({','.join('?' * len(ids))})",
                ids,
            )
        )
        for conversation_id, (message_id, snippet, in_reasoning) in passages.items():
            hits.append(
                SearchHit(
                    conversation_id, title_of[conversation_id], snippet, message_id, in_reasoning
                )
            )
    return hits[:limit]


# --- timing ----------------------------------------------------------------------------------


def percentile(samples: list[float], p: float) -> float:
    """Nearest rank: with 50 samples p99 is the largest, with 100 the largest but one."""
    ordered = sorted(samples)
    return ordered[max(0, min(len(ordered) - 1, math.ceil(p / 100 * len(ordered)) - 1))]


def time_runs(run: Callable[[], object], runs: int) -> tuple[list[float], list[float]]:
    """(wall-clock seconds, this thread's CPU seconds) of each run, after one warm-up."""
    run()  # warm-up: the page cache and SQLite's own cache
    wall, cpu = [], []
    for _ in range(runs):
        started, started_cpu = time.perf_counter(), time.thread_time()
        run()
        wall.append(time.perf_counter() - started)
        cpu.append(time.thread_time() - started_cpu)
    return wall, cpu


def time_old(path: Path, shape: str, budget_s: float) -> tuple[list[float], str]:
    """Runs of the old search until budget_s is spent, in a child process: a single FTS5 call
    can run for minutes without reaching SQLite's progress handler, so only a kill bounds it."""
    command = [sys.executable, "-m", "benchmarks.history_search", "--old-child", str(path), shape]
    try:
        child = subprocess.run(
            [*command, str(budget_s)],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=budget_s + OLD_ABORT_S,
            check=True,
        )
    except subprocess.TimeoutExpired:
        return [], f"killed after {budget_s + OLD_ABORT_S:.0f} s without an answer"
    report = json.loads(child.stdout)
    return report["samples"], report["error"]


def _old_child(path: str, shape: str, budget_s: float) -> None:
    conn = sqlite3.connect(path, isolation_level=None)
    text = _shape_text(conn, shape)
    samples: list[float] = []
    error = ""
    while not samples or sum(samples) < budget_s:
        started = time.perf_counter()
        try:
            old_search(conn, text)
        except sqlite3.Error as e:
            error = f"raised {type(e).__name__}: {e}"
            break
        samples.append(time.perf_counter() - started)
    print(json.dumps({"samples": samples, "error": error}))


class _Waiter:
    """Submits to a Searcher and waits for that submission's result."""

    def __init__(self, path: Path) -> None:
        self._done = threading.Event()
        self._result: SearchResult | None = None
        self.latest = 0
        self.delivered = self.out_of_date = 0
        self.searcher = Searcher(path, self._deliver)

    def _deliver(self, result: SearchResult) -> None:
        self.delivered += 1
        self.out_of_date += result.generation != self.latest
        self._result = result
        self._done.set()

    def submit(self, text: str) -> int:
        self.latest = self.searcher.submit(text)
        return self.latest

    def search(self, text: str) -> SearchResult:
        self._done.clear()
        generation = self.submit(text)
        while True:
            if not self._done.wait(30):
                raise TimeoutError(f"no result for {text[:20]!r} within 30 s")
            result = self._result
            if result is not None and result.generation == generation:
                if result.error is not None:
                    raise result.error
                return result
            self._done.clear()


def typing_burst(waiter: _Waiter, word: str, gap_s: float) -> tuple[float, int, int]:
    """Type `word` a letter at a time: (the last result's latency, results delivered, results
    delivered after a newer search had been submitted)."""
    waiter.delivered = waiter.out_of_date = 0
    for end in range(1, len(word)):
        waiter.submit(word[:end])
        time.sleep(gap_s)
    started = time.perf_counter()
    waiter.search(word)
    return time.perf_counter() - started, waiter.delivered, waiter.out_of_date


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["--old-child"]:
        _old_child(argv[1], argv[2], float(argv[3]))
        return 0
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--chats", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=50, help="timed runs per shape (new)")
    parser.add_argument("--old-budget", type=float, default=15.0, help="seconds per shape (old)")
    args = parser.parse_args(argv)

    path = database(args.chats)
    conn = sqlite3.connect(path, isolation_level=None)
    messages = conn.execute("SELECT count(*) FROM messages").fetchone()[0]
    print(
        f"history_search: {args.chats:,} chats, {messages:,} messages, "
        f"{path.stat().st_size / 1e6:.0f} MB; {platform.machine()}, {os.cpu_count()} cores, "
        f"load {os.getloadavg()[0]:.1f}; SQLite {sqlite3.sqlite_version}; "
        f"{args.runs} runs a shape; times in ms"
    )
    print(
        f"{'shape':22s} {'hits':>4s} {'cpu p50':>7s} {'new p50':>8s} {'p99':>6s} "
        f"{'searcher p50':>12s} "
        f"{'p99':>6s} {'old p50':>9s} {'p99':>9s} {'old runs':>8s} {'old/new p99':>11s}"
    )
    waiter = _Waiter(path)
    worst = 0.0
    try:
        for name in SHAPES:
            text = _shape_text(conn, name)
            hits = len(search(conn, text))
            new, cpu = time_runs(functools.partial(search, conn, text), args.runs)
            threaded, _ = time_runs(functools.partial(waiter.search, text), args.runs)
            old, note = time_old(path, name, args.old_budget)
            p99 = max(percentile(new, 99), percentile(threaded, 99))
            worst = max(worst, p99)
            ms = [1000 * percentile(s, p) for s in (new, threaded) for p in (50, 99)]
            old_text, ratio = f"{'-':>9s} {'-':>9s}", f"{'-':>11s}"
            if old:
                old_text = f"{1000 * statistics.median(old):9.1f} {1000 * percentile(old, 99):9.1f}"
                ratio = f"{percentile(old, 99) / p99:10.0f}x"
            print(
                f"{name:22s} {hits:4d} {1000 * statistics.median(cpu):7.1f} {ms[0]:8.1f} "
                f"{ms[1]:6.1f} {ms[2]:12.1f} {ms[3]:6.1f} "
                f"{old_text} {len(old):8d} {ratio}" + (f"  old: {note}" if note else ""),
                flush=True,
            )
        for gap_s in (0.03, 0.005):
            latency, delivered, out_of_date = typing_burst(waiter, "memory", gap_s)
            print(
                f"typing 'memory', {1000 * gap_s:.0f} ms a letter: the last result "
                f"{1000 * latency:.1f} ms after the last key; {delivered} results delivered for "
                f"6 keys, {out_of_date} of them after a newer search was asked for"
            )
    finally:
        waiter.searcher.close()
        conn.close()
    met = worst * 1000 <= GOAL_MS
    verdict = "met" if met else "NOT met"
    print(f"goal p99 <= {GOAL_MS:.0f} ms for every shape: {verdict} (worst {1000 * worst:.1f} ms)")
    return 0 if met else 1


if __name__ == "__main__":
    raise SystemExit(main())
