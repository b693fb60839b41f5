"""HTML pages read by the one-pass reader: structure, tables, charsets, and pathological markup."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.documents import extract

PAGE = """<!DOCTYPE html>
<html><head><title>Release   notes</title>
<style>body { color: red }</style><script>var secret = "do not read";</script></head>
<body><!-- a comment -->
<nav><a href="/">Home</a></nav>
<h1>
   Version <span> 2</span>
</h1>
<p>Faster
   startup and <b>fewer</b> crashes.</p>
<h2>Fixes</h2>
<ul><li>Crash on drop</li><li>Slow <i>search</i></li></ul>
<pre>def f():
    return 1</pre>
<table><tr><th>Build</th><th>Time</th></tr><tr><td>debug</td><td>3 s</td></tr></table>
<p>Line one<br>line two</p>
<noscript>Enable JavaScript</noscript>
</body></html>"""


def test_scripts_styles_and_markup_are_dropped_and_structure_is_kept(tmp_path: Path) -> None:
    path = tmp_path / "notes.html"
    path.write_text(PAGE, encoding="utf-8")

    doc = extract(path)

    assert (doc.kind, doc.pages) == ("html", None)
    assert doc.text == (
        "# Release notes\n\n"
        "Home\n\n"
        "# Version 2\n\n"
        "Faster startup and fewer crashes.\n\n"
        "## Fixes\n\n"
        "- Crash on drop\n"
        "- Slow search\n\n"
        "```\ndef f():\n    return 1\n```\n\n"
        "| Build | Time |\n|---|---|\n| debug | 3 s |\n\n"
        "Line one\nline two"
    )


def test_the_title_is_not_repeated_when_the_page_starts_with_it(tmp_path: Path) -> None:
    path = tmp_path / "page.htm"
    path.write_text("<title>Guide</title><h1>Guide</h1><p>Body.</p>", encoding="utf-8")

    assert extract(path).text == "# Guide\n\nBody."


def test_the_pages_declared_charset_is_honoured(tmp_path: Path) -> None:
    path = tmp_path / "old.html"
    html = '<html><head><meta charset="iso-8859-1"></head><body><p>Café crème</p></body></html>'
    path.write_bytes(html.encode("latin-1"))

    assert extract(path).text == "Café crème"


def _read(tmp_path: Path, html: str | bytes, name: str = "page.html") -> str:
    path = tmp_path / name
    path.write_bytes(html.encode() if isinstance(html, str) else html)
    return extract(path).text


def test_a_table_inside_a_cell_reads_as_words_in_that_cell(tmp_path: Path) -> None:
    html = (
        "<table><tr><th>Plan</th><th>Notes</th></tr>"
        "<tr><td>A</td><td>see <table><tr><td>x|1</td><td>y</td></tr></table> below</td></tr>"
        "</table>"
    )
    assert _read(tmp_path, html) == ("| Plan | Notes |\n|---|---|\n| A | see x\\|1 y below |")


def test_markup_inside_a_cell_is_flattened_and_stray_table_text_dropped(tmp_path: Path) -> None:
    html = "<table>stray<tr><td><p>one</p><br><b>two</b></td></tr></table><p>after</p>"
    assert _read(tmp_path, html) == "| one two |\n|---|\n\nafter"


def test_unclosed_elements_end_with_the_page(tmp_path: Path) -> None:
    assert (
        _read(tmp_path, "<h2>Heading<p>para <b>bold <li>item") == "## Heading\n\npara bold\n- item"
    )


def test_a_latin1_declaration_means_windows_1252(tmp_path: Path) -> None:
    # As in browsers: "iso-8859-1" pages are decoded as Windows-1252, whose 0x80-0x9f are letters.
    html = '<meta http-equiv="Content-Type" content="text/html; charset=ISO-8859-1"><p>“Café” – €5'
    assert _read(tmp_path, html.encode("cp1252")) == "“Café” – €5"


def test_an_undeclared_western_page_is_decoded_with_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "old.html"
    path.write_bytes("<p>A naïve plan from the café.</p>".encode("latin-1"))

    doc = extract(path)

    assert doc.text == "A naïve plan from the café."
    assert doc.warnings == (
        "old.html is not UTF-8; it was read as Windows-1252 (Western European) (a guess).",
    )


@pytest.mark.parametrize(
    ("unit", "expected_start"),
    [
        ("<div>x ", "x\n\nx\n\nx"),  # 140,000 levels deep
        ("<b>x ", "x x x"),  # never closed
        ("<table><tr><td>x ", "| x x x"),  # tables in cells in tables
        ("<ul><li>x ", "- x\n\n- x"),
        ("<pre>x\n", "```\nx\n"),
    ],
    ids=["nested-div", "unclosed-b", "nested-table", "nested-list", "nested-pre"],
)
def test_a_megabyte_of_pathological_nesting_reads_in_linear_time(
    tmp_path: Path, unit: str, expected_start: str
) -> None:
    path = tmp_path / "deep.html"
    path.write_text(unit * (1_000_000 // len(unit)))
    started = time.process_time()

    text = extract(path).text

    # Linear code needs about a second here; the tree edits this replaced needed minutes.
    assert time.process_time() - started < 8.0
    assert text.startswith(expected_start)
    assert text.count("x") == 1_000_000 // len(unit)
