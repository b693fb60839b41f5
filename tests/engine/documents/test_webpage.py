"""HTML pages read with beautifulsoup4."""

from __future__ import annotations

from pathlib import Path

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
