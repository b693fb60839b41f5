"""Citations 【cursor†Lx-Ly】 in answers: the renderer turns each into one link (never inside code,
never for text that only looks similar), the view numbers them by first appearance while the
answer streams, marks those that point nowhere, and an answer without resolutions says so when
a citation is clicked."""

from __future__ import annotations

import re

from pytestqt.qtbot import QtBot

from app.markdown_render import MarkdownRenderer
from app.markdown_view import MarkdownView
from app.message_widget import AssistantMessageWidget


def links(html: str) -> list[str]:
    return re.findall(r'<a href="(cite:[^"]*)"', html)


def test_the_renderer_links_each_citation_and_nothing_else() -> None:
    renderer = MarkdownRenderer()
    (block,) = renderer.render(
        "Built in 1987 【1†L4-L6】, rebuilt 【3†L2】 and **again 【2†L1-3】**. "
        "Not 【x†L1】, not 【1†4】, not `【1†L1】`."
    )
    assert links(block.html) == ["cite:1:4:6", "cite:3:2:2", "cite:2:1:3"]
    assert "【x†L1】" in block.html and "【1†4】" in block.html
    assert "<code" in block.html and "【1†L1】</code>" in block.html
    code, *_ = renderer.render("```\nsee 【1†L1-L2】\n```\n")
    assert links(code.html) == []


def test_the_view_numbers_citations_in_order_and_marks_those_pointing_nowhere(
    qtbot: QtBot,
) -> None:
    view = MarkdownView()
    qtbot.addWidget(view)
    # Streamed in pieces that cut a citation in two, as the model writes it token by token.
    for piece in [
        "First 【4†L1",
        "0-L12】 then 【",
        "2†L3】.\n\nAgain 【4†L10-L12】 and ",
        "【9†L1】",
    ]:
        view.append(piece)
    view.finish()
    html = "".join(label.text() for label in view.prose_labels())
    numbers = re.findall(r'href="cite:(\d+:\d+:\d+)"[^>]*><sup>\[(\d+\??)\]', html)
    assert numbers == [("4:10:12", "1"), ("2:3:3", "2"), ("4:10:12", "1"), ("9:1:1", "3")]

    view.set_citations({(4, 10, 12): True, (2, 3, 3): False})  # 9 was never resolved either
    html = "".join(label.text() for label in view.prose_labels())
    assert re.findall(r"<sup>\[(\d+\??)\]</sup>", html) == ["1", "2?", "1", "3?"]
    assert html.count("line-through") == 2
    assert view.markdown.endswith("【9†L1】")  # the text itself is kept as written

    clicked: list[object] = []
    view.citation_clicked.connect(clicked.append)
    view.prose_labels()[0].linkActivated.emit("cite:2:3:3")
    view.prose_labels()[0].linkActivated.emit("cite:2:x:3")  # not ours: ignored
    assert clicked == [(2, 3, 3)]


def test_a_citation_of_an_answer_saved_without_them_says_why_it_cannot_open(qtbot: QtBot) -> None:
    widget = AssistantMessageWidget(1, "medium")
    qtbot.addWidget(widget)
    widget.answer.set_markdown("It is so 【1†L2-L3】.")
    widget.answer.prose_labels()[0].linkActivated.emit("cite:1:2:3")
    assert widget.status_label.text().startswith("Citation [1] cannot be opened")
