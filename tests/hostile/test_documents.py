"""Hostile documents: each ends in a clear error or correct, bounded text, in bounded time and
memory, and the app's own process does not grow while a reader process takes the blow.

The files come from engine/testing/hostile_documents.py (zip bombs, a zip whose index lies,
quadratic HTML, PDFs with one shared stream, 100,000 pages or slow pages, a giant line, junk).
Run with -s to see each case's row: outcome, seconds, the reader's peak MiB.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import pytest

from engine.documents import DocumentLimits, UnsupportedDocumentError, extract
from engine.testing.hostile_documents import (
    CASES,
    Case,
    docx_lying_index,
    docx_zip_bomb,
    format_table,
    html_nested,
    html_unclosed,
    html_unterminated_tags,
    measure,
    pdf_shared_stream,
    text_giant_line,
)

# The suite's limits: the app's, except 5 s in all and 1 s a page, so time-limited cases end soon.
LIMITS = DocumentLimits(seconds=5.0, page_seconds=1.0)
MiB = 1 << 20


def _own_peak() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


@pytest.mark.parametrize("case", CASES, ids=[case.filename for case in CASES])
def test_a_hostile_document_is_read_or_refused_within_bounds(tmp_path: Path, case: Case) -> None:
    path = case.make(tmp_path / case.filename)  # before the peak is taken: making costs memory
    before = _own_peak()

    [result] = measure(tmp_path, limits=LIMITS, cases=[replace(case, make=lambda _: path)])

    print("\n" + format_table([result]))
    assert result.as_expected, result.detail
    if result.outcome != "text":
        assert result.detail.startswith(case.filename), "a message names the file first"
    # A time-limited case ends at the limit; the others take a few seconds at most.
    assert result.seconds < LIMITS.seconds + 1.5
    assert result.peak_mib < 400  # the bombs would take gigabytes if inflated
    assert _own_peak() - before < 64 * MiB  # the parent only sees a message


@pytest.mark.parametrize(
    ("make", "expected"),
    [
        (html_nested, "x\n\nx\n\nx"),
        (html_unclosed, "x x x"),
        (html_unterminated_tags, "Before."),
        (pdf_shared_stream, "--- Page 1 ---\nLine 0 of the one stream every page shares."),
        (text_giant_line, None),
        (docx_zip_bomb, None),
        (docx_lying_index, None),
    ],
    ids=["nested-div", "unclosed-b", "unterminated-a", "shared-pdf", "giant-line", "bomb", "liar"],
)
def test_in_process_the_same_files_cost_seconds_not_minutes(
    tmp_path: Path, make: Callable[[Path], Path], expected: str | None
) -> None:
    suffix = {"html": ".html", "pdf": ".pdf", "text": ".txt"}.get(make.__name__.split("_")[0])
    path = make(tmp_path / f"hostile{suffix or '.docx'}")
    before, started = _own_peak(), time.process_time()

    try:
        text: str | None = extract(path, limits=LIMITS).text
    except UnsupportedDocumentError:
        text = None

    assert time.process_time() - started < 8.0
    if expected is None:
        assert text is None  # refused: the giant line is over 2,000,000 characters
        assert _own_peak() - before < 64 * MiB
    else:
        assert text is not None and text.startswith(expected)
