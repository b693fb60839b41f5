"""Markdown -> Qt HTML (Qt-free): code with pygments, tables, LaTeX as marked Unicode, nothing the
model writes is loaded or interpreted, and streaming renders the same as a whole render while
parsing only the tail."""

from __future__ import annotations

import random

import pytest

from app.latex_text import latex_to_html
from app.markdown_render import MarkdownRenderer, StreamingMarkdown

ANSWER = r"""# Plan

Some text with `inline <code>` and **bold**, costing $5 or $10.

1. first

2. second
   continues

| Name | Value |
|------|------:|
| a    | 1     |
| b    | 2     |

```python
def f(x):
    return x ** 2
```

Inline math \(a^2 + b^2 = c^2\) and $e^{i\pi} + 1 = 0$.

\[
\int_0^1 x\,dx = \frac{1}{2}
\]

$$\sum_{i=1}^{n} i = \frac{n(n+1)}{2}$$

> a quote
continued lazily

- [link](https://example.com) and ![a picture](file:///etc/passwd)
- <script>alert(1)</script>

Last paragraph without a newline"""


@pytest.fixture(scope="module")
def renderer() -> MarkdownRenderer:
    return MarkdownRenderer()


def test_code_blocks_are_their_own_blocks_highlighted_with_the_raw_code_kept(
    renderer: MarkdownRenderer,
) -> None:
    code = [b for b in renderer.render(ANSWER) if b.is_code]
    assert len(code) == 1
    assert code[0].language == "python"
    assert code[0].code == "def f(x):\n    return x ** 2\n"
    assert "<span style=" in code[0].html  # pygments colours, inline for Qt
    assert "<pre" in code[0].html


def test_tables_headings_and_lists_render_for_qt(renderer: MarkdownRenderer) -> None:
    html = "".join(b.html for b in renderer.render(ANSWER))
    assert '<table border="1"' in html  # QTextDocument reads borders from attributes
    assert "<th>Name</th>" in html and "<td>a</td>" in html
    assert "<h1>Plan</h1>" in html
    assert "<ol>" in html and "<li>" in html


def test_latex_becomes_readable_unicode_marked_as_math(renderer: MarkdownRenderer) -> None:
    blocks = [b.html for b in renderer.render(ANSWER)]
    html = "".join(blocks)
    assert html.count('class="math"') == 4
    assert "a<sup>2</sup> + b<sup>2</sup> = c<sup>2</sup>" in html
    assert "e<sup>iπ</sup> + 1 = 0" in html
    display = next(b for b in blocks if "∫" in b)
    assert display.startswith('<p class="math" align="center"')
    assert "∫<sub>0</sub><sup>1</sup> x dx = 1/2" in display
    assert "∑<sub>i=1</sub><sup>n</sup> i = (n(n+1))/2" in html


def test_dollar_amounts_are_not_math(renderer: MarkdownRenderer) -> None:
    html = renderer.render("It costs $5 or $10 today.")[0].html
    assert "math" not in html
    assert "$5 or $10" in html


@pytest.mark.parametrize(
    ("tex", "html"),
    [
        (r"x_{ij}^{2}", "x<sub>ij</sub><sup>2</sup>"),
        (r"\alpha \le \beta", "α≤β"),
        (r"\frac{a+b}{c}", "(a+b)/c"),
        (r"\sqrt{2}", "√(2)"),
        (r"a < b", "a &lt; b"),
        (r"\frac{1}{", "1/"),  # half-streamed LaTeX never breaks the answer
    ],
)
def test_latex_to_html(tex: str, html: str) -> None:
    assert latex_to_html(tex).replace(" ", "") == html.replace(" ", "")


def test_model_html_and_images_are_never_interpreted(renderer: MarkdownRenderer) -> None:
    html = "".join(b.html for b in renderer.render(ANSWER))
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert "<img" not in html
    assert "&lt;code&gt;" in html  # inside inline code, escaped
    assert '<a href="https://example.com">link</a>' in html


@pytest.mark.parametrize("seed", range(6))
def test_streaming_in_random_pieces_renders_like_the_whole_text(
    renderer: MarkdownRenderer, seed: int
) -> None:
    rng = random.Random(seed)
    stream = StreamingMarkdown(renderer)
    finished, tail = [], []
    i = 0
    while i < len(ANSWER):
        n = rng.choice([1, 2, 3, 7, 20])
        update = stream.append(ANSWER[i : i + n])
        i += n
        finished += update.finished
        tail = update.tail
    whole = [b.html for b in renderer.render(ANSWER)]
    assert [b.html for b in finished + tail] == whole
    assert [b.html for b in finished + stream.finish()] == whole


def test_finished_blocks_are_not_parsed_again(renderer: MarkdownRenderer) -> None:
    stream = StreamingMarkdown(renderer)
    for n in range(200):
        stream.append(f"Paragraph {n} with some words in it.\n\n")
    update = stream.append("The tail")
    assert len(stream.text) > 7000
    assert stream.pending_chars < 100  # only the tail is parsed on each update
    assert len(update.tail) <= 2 and not update.finished


def test_a_list_item_still_arriving_keeps_its_list_open(renderer: MarkdownRenderer) -> None:
    stream = StreamingMarkdown(renderer)
    assert stream.append("1. one\n\n").finished == []
    assert stream.append("2").finished == []  # could become "2. two" in the same list
    update = stream.append(". two\n\nAfter\n")
    assert len(update.finished) == 1 and "<ol>" in update.finished[0].html
    assert "two" in update.finished[0].html  # one list, not two
