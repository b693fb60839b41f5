"""`make demo` in the window: the real engine on the demo model, labelled as what it is, with a
scripted answer that renders as Markdown (code block, table) and its reasoning in the pane."""

from __future__ import annotations

from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from pytestqt.qtbot import QtBot

from app.about_dialog import AboutDialog
from app.engine_requests import DEMO_LABEL, ModelInfo
from app.message_widget import AssistantMessageWidget
from engine.testing.demo import write_demo_model
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow

pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")


@pytest.fixture(scope="module")
def demo_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_demo_model(tmp_path_factory.mktemp("demo") / "demo-model")


def test_the_demo_model_is_labelled_and_its_answer_renders(
    qtbot: QtBot, make_window: MakeWindow, demo_dir: Path
) -> None:
    window = make_window(model=demo_dir)
    info = window.engine.model
    assert info is not None and info.is_demo
    qtbot.waitUntil(lambda: DEMO_LABEL in window.windowTitle())
    assert window.composer.status_label.text().startswith(f"{DEMO_LABEL} · ")
    window.show_about()
    about = window.findChild(AboutDialog)
    assert about is not None
    assert f"Model: {DEMO_LABEL} ({demo_dir})" in about.diagnostics_text()
    about.close()

    window.composer.effort_buttons["low"].click()
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        window.composer.set_text("Why do rainbows appear?")
        qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    assert done.args[0].error is None
    widget = window.view.messages()[-1]
    assert isinstance(widget, AssistantMessageWidget)
    assert widget.thinking.text.startswith("The user asks about “Why do rainbows appear”.")
    (code,) = widget.answer.code_blocks()
    assert code.code.startswith('words = ["rainbows", "appear"]\n')
    prose = "".join(label.text() for label in widget.answer.prose_labels())
    assert "<table" in prose and "rainbows" in prose and "<h2" in prose
    assert DEMO_LABEL in window.windowTitle()  # the title now names the chat, and still says so


def test_a_model_that_is_not_the_demo_keeps_its_folder_name() -> None:
    info = ModelInfo(path="/models/gpt-oss-20b", context_tokens=8192, profile="full")
    assert info.name == "gpt-oss-20b"
    assert DEMO_LABEL not in info.diagnostics()["Model"]
