"""The reader pool: real reader processes, their limits, cancelling, and dying with the app."""

from __future__ import annotations

import concurrent.futures
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.documents import (
    DocumentLimitError,
    DocumentLimits,
    ExtractedDocument,
    ReaderPool,
    Reading,
    UnsupportedDocumentError,
    extract,
)
from engine.documents.sandbox import child_command
from engine.testing.hostile_documents import docx_zip_bomb, pdf_slow_pages, pdf_with_pages
from tests.engine.documents.samples import write_docx, write_pdf

ROOT = Path(__file__).resolve().parents[3]
MiB = 1 << 20


@pytest.fixture
def pool() -> Iterator[ReaderPool]:
    readers = ReaderPool()
    yield readers
    readers.shutdown(timeout=5)


@pytest.fixture(scope="module")
def slow_pdf(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Minutes of parsing for pypdf: every page has its own 3.5 MB of text moves."""
    return pdf_slow_pages(tmp_path_factory.mktemp("slow") / "slow.pdf", pages=20)


def alive(pid: int) -> bool:
    """Running (a zombie has exited: an orphan's may wait long for a reaper in a container)."""
    if not Path("/proc").is_dir():  # macOS: no zombie check
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        return True
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except FileNotFoundError:
        return False
    return stat.rpartition(")")[2].split()[0] != "Z"


def wait_for(condition: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if callable(condition) and condition():
            return True
        time.sleep(0.01)
    return False


def started(reading: Reading) -> int:
    assert wait_for(lambda: reading.pid is not None, 10), "the reader never started"
    pid = reading.pid
    assert pid is not None
    return pid


def sample_files(folder: Path) -> list[Path]:
    folder.mkdir()
    (folder / "notes.txt").write_bytes("Plain notes, naïve café.\n".encode("latin-1"))
    (folder / "readme.md").write_text("# Title\n\nSome *markdown*.\n")
    (folder / "table.csv").write_text("name,score\nada,3\n")
    (folder / "page.html").write_text("<h1>Hello</h1><p>A <b>web</b> page.</p>")
    write_docx(folder / "report.docx")
    write_pdf(folder / "slides.pdf", ["First page.", "Second page."])
    return sorted(folder.iterdir())


def test_the_pool_reads_every_kind_exactly_as_extract_does(
    pool: ReaderPool, tmp_path: Path
) -> None:
    files = sample_files(tmp_path / "docs")

    readings = [pool.read(path) for path in files]

    for path, reading in zip(files, readings, strict=True):
        assert reading.result(60).to_dict() == extract(path).to_dict()
        assert reading.stats is not None
        assert reading.stats.exit_status == 0
        # The reader's own peak (Python and the parsers), not the parent's, which it inherits.
        assert 10 * MiB < reading.stats.peak_rss_bytes < 400 * MiB


@pytest.mark.parametrize(
    ("name", "limit"), [("missing.pdf", None), ("folder", None), ("bomb.docx", "size")]
)
def test_problems_come_back_as_the_same_errors(
    pool: ReaderPool, tmp_path: Path, name: str, limit: str | None
) -> None:
    path = tmp_path / name
    if name == "folder":
        path.mkdir()
    elif name == "bomb.docx":
        docx_zip_bomb(path)
    with pytest.raises(UnsupportedDocumentError) as in_process:
        extract(path)

    with pytest.raises(UnsupportedDocumentError) as from_reader:
        pool.read(path).result(60)

    assert str(from_reader.value) == str(in_process.value)
    assert getattr(from_reader.value, "limit", None) == limit


def test_a_reader_past_the_time_limit_is_stopped_with_a_message(slow_pdf: Path) -> None:
    pool = ReaderPool(DocumentLimits(seconds=2.0, page_seconds=100.0))
    reading = pool.read(slow_pdf)
    pid = started(reading)

    with pytest.raises(DocumentLimitError) as caught:
        reading.result(30)

    assert caught.value.limit == "time"
    assert str(caught.value).startswith("slow.pdf took longer than 2 s to read, so reading it")
    assert reading.stats is not None
    assert 2.0 <= reading.stats.seconds < 4.0
    assert reading.stats.exit_status == -signal.SIGKILL
    assert not alive(pid)


def test_a_page_past_its_own_time_limit_is_left_out(pool: ReaderPool, tmp_path: Path) -> None:
    path = pdf_with_pages(
        tmp_path / "mixed.pdf",
        [b"72 720 Td (A normal page.) Tj", b"72 720 Td (Slow.) Tj " + b"0 0 Td\n" * 500_000],
    )

    doc = pool.read(path, limits=DocumentLimits(page_seconds=0.5)).result(60)

    assert doc.text == "--- Page 1 ---\nA normal page.\n\n--- Page 2 ---"
    assert doc.warnings == ("Page 2 was left out: reading took longer than 0.5 s.",)


@pytest.mark.parametrize("address_space_limit", [True, False], ids=["rlimit-as", "peak-watchdog"])
def test_a_reader_over_the_memory_limit_is_stopped_with_a_message(
    tmp_path: Path, address_space_limit: bool
) -> None:
    # 45 MB of UTF-8 needs about 180 MB to decode; False is what macOS gets (no RLIMIT_AS).
    path = tmp_path / "big.txt"
    path.write_bytes(("naïve café " * 3_500_000).encode())
    limits = DocumentLimits(memory_bytes=120 * MiB, max_chars=100_000_000)
    pool = ReaderPool(limits, address_space_limit=address_space_limit)

    with pytest.raises(DocumentLimitError) as caught:
        pool.read(path).result(60)

    assert caught.value.limit == "memory"
    assert str(caught.value).startswith("big.txt needs more than 120 MB of memory to read")


def test_a_reader_that_crashes_is_reported_not_awaited(pool: ReaderPool, slow_pdf: Path) -> None:
    reading = pool.read(slow_pdf)
    os.kill(started(reading), signal.SIGSEGV)

    with pytest.raises(DocumentLimitError) as caught:
        reading.result(10)

    assert caught.value.limit == "crash"
    assert str(caught.value).startswith(
        "slow.pdf could not be read: the document reader stopped unexpectedly (signal 11)."
    )


def test_cancel_kills_the_reader_at_once(pool: ReaderPool, slow_pdf: Path) -> None:
    reading = pool.read(slow_pdf)
    pid = started(reading)
    seen: list[Reading] = []
    reading.add_done_callback(seen.append)

    reading.cancel()

    assert seen == [reading]  # at once, on this thread
    assert wait_for(lambda: not alive(pid), 2.0)
    with pytest.raises(concurrent.futures.CancelledError):
        reading.result(0)


def test_readings_wait_for_a_free_reader(slow_pdf: Path, tmp_path: Path) -> None:
    pool = ReaderPool(max_workers=1)
    first = pool.read(slow_pdf)
    (tmp_path / "quick.txt").write_text("quick")
    second = pool.read(tmp_path / "quick.txt")
    started(first)
    time.sleep(0.3)
    assert second.pid is None and not second.done()

    first.cancel()

    assert second.result(30).text == "quick"
    pool.shutdown(timeout=5)


def test_shutdown_kills_every_reader_and_refuses_new_ones(slow_pdf: Path) -> None:
    pool = ReaderPool(max_workers=2)
    readings = [pool.read(slow_pdf) for _ in range(3)]  # the third waits
    pids = [started(r) for r in readings[:2]]
    began = time.monotonic()

    pool.shutdown(timeout=2)

    assert time.monotonic() - began < 2.0
    assert all(r.cancelled() for r in readings)
    assert wait_for(lambda: not any(alive(pid) for pid in pids), 2.0)
    with pytest.raises(RuntimeError):
        pool.read(slow_pdf)


APP_THAT_DIES = """
import sys, time, types
engine = types.ModuleType("engine")  # enter engine.documents without MLX: a quicker test
engine.__path__ = ["engine"]
sys.modules["engine"] = engine
from engine.documents import ReaderPool
reading = ReaderPool().read(sys.argv[1])
while reading.pid is None:
    time.sleep(0.01)
print(reading.pid, flush=True)
time.sleep(60)
"""


def test_readers_die_with_the_app_even_when_it_is_killed(slow_pdf: Path) -> None:
    app = subprocess.Popen(
        [sys.executable, "-c", APP_THAT_DIES, str(slow_pdf)],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert app.stdout is not None
        reader = int(app.stdout.readline())
        assert alive(reader)
    finally:
        app.kill()
        app.wait()

    # Orphaned, the reader notices its parent is gone (its watchdog looks every 50 ms).
    assert wait_for(lambda: not alive(reader), 2.0)


def test_the_reader_starts_without_the_model_libraries(tmp_path: Path) -> None:
    path = tmp_path / "tiny.txt"
    path.write_text("tiny")
    request = json.dumps({"path": str(path), "limits": DocumentLimits().to_dict()})
    command = child_command(request)
    began = time.monotonic()

    run = subprocess.run(
        [command[0], "-X", "importtime", *command[1:]], capture_output=True, text=True, check=True
    )

    imported = {line.split("|")[-1].strip() for line in run.stderr.splitlines() if "|" in line}
    assert {"mlx", "torch", "PySide6", "engine.chat"}.isdisjoint(imported)
    assert "engine.documents.extract" in imported
    assert json.loads(run.stdout)["document"]["text"] == "tiny"
    assert time.monotonic() - began < 5.0  # about 0.25 s on an idle machine


def test_a_reply_is_checked_before_it_becomes_a_document() -> None:
    good = ExtractedDocument(
        name="a.txt",
        path=Path("/tmp/a.txt"),
        kind="text",
        text="hi",
        pages=None,
        page_offsets=(),
        sha256="0" * 64,
        size_bytes=2,
    ).to_dict()
    assert ExtractedDocument.from_dict(good).text == "hi"

    for broken in ({**good, "kind": "exe"}, {**good, "pages": "3"}, {"text": "hi"}):
        with pytest.raises(ValueError):
            ExtractedDocument.from_dict(broken)
