"""Issue 11's acceptance test: a 1,000-page PDF attached in the app is indexed in the background
while the window keeps turning its event loop, then the model (tiny real engine, scripted tokens
of the real vocabulary) searches it, opens the right page and answers with citations that show
as links and open the PDF at that page."""

from __future__ import annotations

import itertools
import re
import time
from pathlib import Path

import pytest
from fpdf import FPDF
from PySide6.QtCore import QTimer
from PySide6.QtGui import QDesktopServices
from pytestqt.qtbot import QtBot

from app.attachments import AttachmentTray
from app.library_indexer import LibraryIndexer
from engine import HarmonyTokenizer, JobState, Library
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.test_chat_flow import last_answer, send
from tests.app.test_document_browsing import (
    UrlCatcher,
    browser_call,
    browsing_window,
    final,
    script_tokens,
)
from tests.app.test_documents import drop, wait_read
from tests.engine.library.documents import filler

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)


PAGES = 1000
FACT_PAGE = 734
FACT = "The Halvorsen turbine was commissioned in 1987 at the Kestrel Bay plant."
TICK_MS = 10
MAX_GAP_S = 0.5  # generous: a frame is 16 ms; a user notices a stall of a few hundred


def write_big_pdf(path: Path) -> Path:
    """Plain text lines placed on each page (no wrapping, no fonts to embed): well under a second
    for 1,000 pages, where fpdf2's multi_cell takes ten."""
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=10)
    for number in range(1, PAGES + 1):
        pdf.add_page()
        words = filler(number, 120).split()
        lines = [" ".join(words[i : i + 12]) for i in range(0, len(words), 12)]
        if number == FACT_PAGE:
            lines.insert(3, FACT)
        for row, line in enumerate(lines):
            pdf.text(15, 20 + 6 * row, line)
    pdf.output(str(path))
    return path


@pytest.fixture(scope="session")
def big_pdf(request: pytest.FixtureRequest) -> Path:
    """Built once into pytest's cache (the name says what it holds, so a change rebuilds it)."""
    folder = request.config.cache.mkdir("big-pdf")
    path = folder / f"report-{PAGES}p-fact{FACT_PAGE}-v1.pdf"
    if not path.is_file():
        partial = path.with_suffix(".part")
        write_big_pdf(partial)
        partial.replace(path)
    return path


class Ticks:
    """A timer that records when the event loop ran it: the longest gap is the longest time the
    window could not repaint or take input."""

    def __init__(self) -> None:
        self.times: list[float] = []
        self.timer = QTimer()
        self.timer.setInterval(TICK_MS)
        self.timer.timeout.connect(lambda: self.times.append(time.monotonic()))

    def longest_gap(self, since: float, until: float) -> float:
        times = [since, *(t for t in self.times if since < t < until), until]
        return max(b - a for a, b in itertools.pairwise(times))


def test_a_1000_page_pdf_is_indexed_in_the_background_then_searched_and_cited(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    big_pdf: Path,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, script = browsing_window(make_window, real_tok)
    indexer = window.library
    assert isinstance(indexer, LibraryIndexer)
    tray = window.composer.tray
    assert isinstance(tray, AttachmentTray)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(big_pdf.read_bytes())

    states: list[tuple[float, JobState]] = []
    labels: list[str] = []

    def record(state: JobState) -> None:  # after the indexer relabelled the chip
        states.append((time.monotonic(), state))
        labels.extend(chip.label.text() for chip in tray.chips())

    indexer.job_changed.connect(record)
    ticks = Ticks()
    ticks.timer.start()
    dropped = time.monotonic()
    drop(window, [pdf])
    qtbot.waitUntil(
        lambda: bool(states) and states[-1][1].status == "done", timeout=TURN_TIMEOUT_MS
    )
    indexed = time.monotonic()
    ticks.timer.stop()
    wait_read(qtbot, window, 1)

    # The window kept turning its event loop while the pages were indexed (and before, while
    # the reader process read the PDF: reported, that part is not this issue's).
    started = next(t for t, s in states if s.status == "indexing")
    gap = ticks.longest_gap(started, indexed)
    assert gap < MAX_GAP_S, f"the event loop stalled for {gap:.3f} s while indexing"
    seconds = indexed - started
    print(
        f"\nindexing {PAGES} pages took {seconds:.2f} s ({PAGES / seconds:,.0f} pages/s), longest "
        f"event-loop gap {gap * 1000:.0f} ms; drop to searchable {indexed - dropped:.2f} s, "
        f"longest gap {ticks.longest_gap(dropped, indexed) * 1000:.0f} ms"
    )
    assert seconds < 60  # the target for this machine
    shown = [m.group(1) for m in map(re.compile(r"indexing (\d+)/1000 pages$").search, labels) if m]
    assert shown and 0 < int(shown[0]) < PAGES  # the chip showed the progress part-way
    (chip,) = tray.chips()
    assert chip.label.text() == f"report.pdf · {PAGES} pages · will be searched"
    with Library(data_dir / "library.sqlite3") as library:
        info = library.document_by_path(pdf)
        assert info is not None and info.status == "ready" and info.pages_done == PAGES

    answer = "It was commissioned in 1987 at Kestrel Bay 【1†L1-L4】."
    script_tokens(
        script,
        "<|channel|>analysis<|message|>Search the report.<|end|><|start|>assistant",
        browser_call("search", '{"query": "Halvorsen turbine commissioned"}'),
        browser_call("open", '{"id": 0}'),
        final(answer),
    )
    result = send(qtbot, window, "When was the Halvorsen turbine commissioned?")
    assert result.status == "complete" and result.answer == answer
    assert "Halvorsen" not in script.sessions[-1].messages[0].text.split("\n\n")[0]

    widget = last_answer(window)
    searched, opened = widget.thinking.steps
    assert searched.startswith("searched: Halvorsen turbine commissioned (")
    assert opened.startswith(f"opened report.pdf p. {FACT_PAGE}, lines ")

    assert result.citations is not None
    (cited,) = result.citations.citations
    assert cited.target is not None
    assert cited.target.path == pdf.resolve() and cited.target.page == FACT_PAGE
    link = '<a href="cite:1:1:4" style="text-decoration: none"><sup>[1]</sup></a>'
    labels_shown = widget.answer.prose_labels()
    assert link in "".join(label.text() for label in labels_shown)

    viewer = UrlCatcher()
    QDesktopServices.setUrlHandler("file", viewer, "catch")  # type: ignore[arg-type]
    try:
        labels_shown[0].linkActivated.emit("cite:1:1:4")
    finally:
        QDesktopServices.unsetUrlHandler("file")
    assert [u.toLocalFile() for u in viewer.urls] == [str(pdf.resolve())]
    assert viewer.urls[0].fragment() == f"page={FACT_PAGE}"
