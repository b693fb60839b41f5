"""A search hit opens its chat scrolled to the matching message, with the matched words
highlighted there (in the answer, or in the reasoning when that is where they are); the
highlight goes on the next key press or click, or after a few seconds."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from PySide6.QtCore import QRect, Qt
from PySide6.QtGui import QTextDocument
from PySide6.QtWidgets import QLabel, QWidget
from pytestqt.qtbot import QtBot

import app.chat_view
from app.chat_view import HIGHLIGHT_BACKGROUND, ChatView
from app.history import HistoryStore
from app.main_window import MainWindow
from app.message_widget import AssistantMessageWidget, UserMessageWidget
from tests.app.conftest import MakeWindow

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

SEARCH_TIMEOUT_MS = 10_000
FILLER = "Steady filler prose about nothing in particular, repeated to take up room. " * 12


def long_chat(store: HistoryStore, early_answer: str, early_reasoning: str = "") -> int:
    """A chat of 20 exchanges whose second answer is the one to find."""
    chat = store.create_conversation("Long chat")
    for i in range(20):
        store.add_user_message(chat, f"Question {i}?")
        answer = store.begin_assistant_message(chat, "low")
        if i == 1:
            store.append_to_message(answer, early_answer, early_reasoning)
        else:
            store.append_to_message(answer, f"Answer {i}. {FILLER}", "Thinking it over.")
        store.finish_message(answer, "complete")
    return chat


def other_chat(store: HistoryStore) -> int:
    chat = store.create_conversation("Other chat")
    store.add_user_message(chat, "Hello?")
    answer = store.begin_assistant_message(chat, "low")
    store.append_to_message(answer, "Hi there.")
    store.finish_message(answer, "complete")
    return chat


def marked_text(label: QLabel) -> list[str]:
    """The runs of `label`'s text drawn on the highlight colour, read back from what it shows."""
    document = QTextDocument()
    document.setHtml(label.text())
    runs: list[str] = []
    block = document.begin()
    while block.isValid():
        it = block.begin()
        while not it.atEnd():
            fragment = it.fragment()
            if fragment.charFormat().background().color() == HIGHLIGHT_BACKGROUND:
                runs.append(fragment.text())
            it += 1
        block = block.next()
    return runs


def in_viewport(view: ChatView, widget: QWidget) -> bool:
    top_left = widget.mapTo(view.viewport(), widget.rect().topLeft())
    return view.viewport().rect().contains(QRect(top_left, widget.size()))


def search_and_open(qtbot: QtBot, window: MainWindow, text: str) -> None:
    """Type into the sidebar's search and click the first hit, as a user does."""
    sidebar = window.sidebar
    sidebar.search.setFocus()
    qtbot.keyClicks(sidebar.search, text)
    qtbot.waitUntil(
        lambda: sidebar.list.itemWidget(sidebar.list.item(0)) is not None, timeout=SEARCH_TIMEOUT_MS
    )
    rect = sidebar.list.visualItemRect(sidebar.list.item(0))
    qtbot.mouseClick(sidebar.list.viewport(), Qt.MouseButton.LeftButton, pos=rect.center())


def answer_of(
    window: MainWindow, predicate: Callable[[AssistantMessageWidget], bool]
) -> AssistantMessageWidget:
    (widget,) = [
        w for w in window.view.messages() if isinstance(w, AssistantMessageWidget) and predicate(w)
    ]
    return widget


def test_a_hit_scrolls_to_its_early_message_and_highlights_the_match(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(load=False)
    long_chat(window.store, f"The **Zeppelin** flew over the bay. {FILLER}")
    other_chat(window.store)  # the newest: the one the window would open
    window.controller.refresh_sidebar()

    search_and_open(qtbot, window, "zeppel")
    view = window.view
    target = answer_of(window, lambda w: "Zeppelin" in w.answer_text())
    assert view.messages().index(target) < 4  # early in a chat of 40 messages
    bar = view.verticalScrollBar()
    # Laid out, the chat is far longer than the view, and the view shows the early answer.
    qtbot.waitUntil(lambda: bar.maximum() > 3 * view.viewport().height())
    qtbot.waitUntil(lambda: in_viewport(view, target.answer))
    assert bar.value() < bar.maximum() // 2
    marked = [run for label in target.answer.prose_labels() for run in marked_text(label)]
    assert marked == ["Zeppelin"]  # the matched word as written, not the typed prefix

    # The next key press takes the highlight away, and leaves the text as it was.
    qtbot.wait(20)
    qtbot.keyClick(window.composer.input, Qt.Key.Key_A)
    assert not view.highlighted()
    assert all(not marked_text(label) for label in target.answer.prose_labels())
    assert "Zeppelin" in target.answer.prose_labels()[0].text()


def test_a_match_in_the_reasoning_is_highlighted_there_and_fades(
    qtbot: QtBot, make_window: MakeWindow, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.chat_view, "HIGHLIGHT_MS", 300)
    window = make_window(load=False)
    long_chat(
        window.store,
        f"A plain answer. {FILLER}",
        "First I recall the albatross, then the albatross again.",
    )
    other_chat(window.store)
    window.controller.refresh_sidebar()

    search_and_open(qtbot, window, "albatross")
    target = answer_of(window, lambda w: "albatross" in w.thinking.text)
    body = target.thinking.body
    qtbot.waitUntil(lambda: in_viewport(window.view, target.thinking))
    assert target.thinking.is_expanded()
    marked = [s.cursor.selectedText() for s in body.extraSelections()]
    assert marked == ["albatross", "albatross"]
    assert all(
        s.format.background().color() == HIGHLIGHT_BACKGROUND for s in body.extraSelections()
    )
    qtbot.waitUntil(lambda: not body.extraSelections(), timeout=2000)  # faded on its own


def test_a_user_message_hit_is_found_too(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(load=False)
    chat = long_chat(window.store, f"Answer. {FILLER}")
    window.store.add_user_message(chat, "And what about the quokka?")
    other_chat(window.store)
    window.controller.refresh_sidebar()

    search_and_open(qtbot, window, "quokka")
    (label,) = [
        w.label
        for w in window.view.messages()
        if isinstance(w, UserMessageWidget) and w.text.endswith("quokka?")
    ]
    qtbot.waitUntil(lambda: in_viewport(window.view, label))
    assert marked_text(label) == ["quokka"]
    qtbot.wait(20)  # a later click than the one that opened the hit
    qtbot.mouseClick(window.view.viewport(), Qt.MouseButton.LeftButton)
    assert marked_text(label) == [] and label.text() == "And what about the quokka?"
    assert label.textFormat() == Qt.TextFormat.PlainText


def test_a_long_chat_opens_at_its_last_message(qtbot: QtBot, make_window: MakeWindow) -> None:
    """No blank screenful below the last message: the chat is as tall as its messages."""
    window = make_window(load=False)
    chat = long_chat(window.store, f"Answer. {FILLER}")
    other_chat(window.store)
    window.controller.refresh_sidebar()
    window.controller.open_conversation(chat)
    view = window.view
    last = view.messages()[-1]
    container = view.widget()
    assert container is not None and (layout := container.layout()) is not None
    bar = view.verticalScrollBar()
    qtbot.waitUntil(lambda: bar.maximum() > 3 * view.viewport().height())  # laid out
    qtbot.wait(100)
    assert bar.value() == bar.maximum()
    assert in_viewport(view, last)
    assert container.height() == layout.heightForWidth(container.width())
