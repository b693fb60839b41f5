"""The conversation view: Markdown on screen (code with Copy, tables, math), the reasoning pane,
and streaming into a 20,000-token conversation costing no more than into an empty one."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import QApplication
from pytestqt.qtbot import QtBot

from app.chat_view import ChatView
from app.history import StoredMessage
from app.markdown_view import CodeBlockWidget, ProseLabel
from app.message_widget import AssistantMessageWidget
from app.turn_stream import TurnResult, TurnUpdate

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

ANSWER = """## Steps

Here is how to do it, with a formula \\(E = mc^2\\) inline.

| Step | What |
|------|------|
| 1    | Read |
| 2    | Write |

```python
print("hello")
```

\\[
\\int_0^1 x\\,dx = \\frac{1}{2}
\\]
"""
# About 500 tokens of varied Markdown per answer; 40 of them make a 20,000-token conversation.
LONG_ANSWER = (
    "\n\n".join(
        f"Paragraph {i}: the quick brown fox jumps over the lazy dog, again and again, "
        f"while **bold** and `code` and a list follow.\n\n- item {i}a\n- item {i}b"
        for i in range(14)
    )
    + '\n\n```python\nfor i in range(10):\n    print("line", i)\n```\n'
)


def stored(position: int, role: str, content: str) -> StoredMessage:
    return StoredMessage(
        id=position + 1,
        conversation_id=1,
        position=position,
        role=role,  # type: ignore[arg-type]
        content=content,
        reasoning="Thinking it over." if role == "assistant" else "",
        status="complete",
        effort="medium" if role == "assistant" else None,
        created_at=0.0,
        stats={"answer_tokens": 500, "reasoning_tokens": 20, "thinking_s": 1.0},
    )


@pytest.fixture
def view(qtbot: QtBot) -> Iterator[ChatView]:
    chat = ChatView()
    qtbot.addWidget(chat)
    chat.resize(800, 600)
    chat.show()
    yield chat


def test_code_blocks_have_a_copy_button_that_copies_the_raw_code(
    qtbot: QtBot, view: ChatView
) -> None:
    widget = view.add_assistant(1, "medium")
    widget.answer.set_markdown(ANSWER)
    (code,) = widget.answer.code_blocks()
    assert code.language_label.text() == "python"
    qtbot.mouseClick(code.copy_button, Qt.MouseButton.LeftButton)
    assert QGuiApplication.clipboard().text() == 'print("hello")\n'
    assert code.copy_button.text() == "Copied"


def test_tables_and_math_are_shown(view: ChatView) -> None:
    widget = view.add_assistant(1, "medium")
    widget.answer.set_markdown(ANSWER)
    html = "".join(label.text() for label in widget.answer.findChildren(ProseLabel))
    assert "<table" in html and "<td>Write</td>" in html
    assert 'class="math"' in html
    assert "E = mc<sup>2</sup>" in html
    assert "∫<sub>0</sub><sup>1</sup> x dx = 1/2" in html


def test_a_streamed_answer_ends_like_a_restored_one(qtbot: QtBot, view: ChatView) -> None:
    widget = view.add_assistant(1, "medium")
    widget.begin()
    for i in range(0, len(ANSWER), 5):
        widget.apply(TurnUpdate(1, 1, answer=ANSWER[i : i + 5], answer_start=i))
    widget.finish(TurnResult(1, 1, "complete", {"answer_tokens": 40}), collapse_reasoning=True)
    restored = view.add_assistant(2, "medium")
    restored.restore(stored(1, "assistant", ANSWER))
    assert widget.answer_text() == restored.answer_text() == ANSWER
    texts = [
        label.text()
        for label in widget.answer.findChildren(ProseLabel)
        if label.isVisibleTo(widget)
    ]
    again = [label.text() for label in restored.answer.findChildren(ProseLabel)]
    assert "".join(texts) == "".join(again)
    assert len(widget.answer.findChildren(CodeBlockWidget)) >= 1


def test_an_update_already_on_screen_after_a_restore_is_not_shown_twice(view: ChatView) -> None:
    widget = view.add_assistant(1, "medium")
    widget.restore(stored(1, "assistant", "Hello wor"))
    widget.resume()
    widget.apply(TurnUpdate(1, 1, answer="wor", answer_start=6))  # saved before the restore
    widget.apply(TurnUpdate(1, 1, answer="ld", answer_start=9))
    widget.render_queued()
    assert widget.answer_text() == "Hello world"


def test_the_reasoning_pane_opens_while_streaming_and_collapses_when_done(
    view: ChatView,
) -> None:
    widget = view.add_assistant(1, "high")
    widget.begin()
    assert not widget.thinking.isVisibleTo(widget)  # nothing to show yet
    widget.apply(TurnUpdate(1, 1, analysis="Step one. "))
    widget.apply(TurnUpdate(1, 1, analysis="Step two.", analysis_start=10))
    assert widget.thinking.isVisibleTo(widget) and widget.thinking.is_expanded()
    assert widget.thinking.body.toPlainText() == "Step one. Step two."
    widget.finish(TurnResult(1, 1, "complete", {"reasoning_tokens": 7}), collapse_reasoning=True)
    assert widget.thinking.isVisibleTo(widget) and not widget.thinking.is_expanded()
    assert not widget.thinking.body.isVisibleTo(widget)
    view.set_reasoning_visible(False)  # View > Show Reasoning off
    assert not widget.thinking.isVisibleTo(widget)


def _median_update_ms(widget: AssistantMessageWidget, updates: int = 60) -> float:
    times = []
    for i in range(updates):
        start = time.perf_counter()
        widget.answer.append(f"word{i} " if i % 15 else f"\n\nNew paragraph {i} ")
        QApplication.processEvents()  # layout and paint, as the event loop would
        times.append(time.perf_counter() - start)
    return 1000 * statistics.median(times)


def test_appending_to_a_long_conversation_stays_as_cheap_as_to_a_short_one(
    qtbot: QtBot, view: ChatView
) -> None:
    view.show_messages([stored(0, "user", "Hi"), stored(1, "assistant", "Hello.")])
    short = view.add_assistant(100, "medium")
    QApplication.processEvents()
    short_ms = _median_update_ms(short)

    history = []
    for i in range(40):
        history += [
            stored(2 * i, "user", f"Question {i}"),
            stored(2 * i + 1, "assistant", LONG_ANSWER),
        ]
    assert sum(len(m.content) for m in history) / 4 > 20_000  # ~4 characters per token
    start = time.perf_counter()
    view.show_messages(history)
    QApplication.processEvents()
    restore_s = time.perf_counter() - start
    long = view.add_assistant(200, "medium")
    QApplication.processEvents()
    long_ms = _median_update_ms(long)
    assert long_ms < max(3 * short_ms, short_ms + 5), (short_ms, long_ms)
    assert long_ms < 40  # comfortably inside one 33 ms render interval on a CI machine
    assert restore_s < 10


def test_a_resumed_answer_continues_its_last_paragraph(view: ChatView) -> None:
    widget = view.add_assistant(1, "medium")
    widget.restore(stored(1, "assistant", "Hello wor"))
    widget.resume()  # the conversation was reopened while this answer streamed
    widget.apply(TurnUpdate(1, 1, answer="ld, again.", answer_start=9))
    widget.render_queued()
    layout = widget.answer.layout()
    assert layout is not None
    html = "".join(
        label.text()
        for label in widget.answer.findChildren(ProseLabel)
        if layout.indexOf(label) >= 0
    )
    assert html == "<p>Hello world, again.</p>\n"
