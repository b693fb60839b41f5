"""The reasoning pane while it streams: it grows with its text without hiding the last line, and
once it is full it keeps following the newest text (the README screenshots showed both broken)."""

from __future__ import annotations

import pytest
from pytestqt.qtbot import QtBot

from app.thinking_pane import MAX_BODY_HEIGHT, ThinkingPane

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

SENTENCE = "The user asks about sliding windows; the key facts are the window and the sinks. "


def test_streaming_reasoning_never_hides_its_last_line_and_follows_once_full(
    qtbot: QtBot,
) -> None:
    pane = ThinkingPane()
    qtbot.addWidget(pane)
    pane.resize(740, 400)
    pane.show()
    pane.set_expanded(True)
    qtbot.waitExposed(pane)
    bar = pane.body.verticalScrollBar()
    for _ in range(60):
        for word in SENTENCE.split(" "):
            pane.append(word + " ")
        qtbot.wait(1)
        if pane.body.height() < MAX_BODY_HEIGHT:
            assert bar.maximum() == 0, f"clipped at {len(pane.text)} characters"
        else:
            assert bar.maximum() > 0 and bar.value() == bar.maximum(), len(pane.text)
    assert pane.body.height() == MAX_BODY_HEIGHT
