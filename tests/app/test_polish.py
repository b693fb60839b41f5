"""Issue 15's findings 3-8: honest model state, prefill status, search hits, banners, layout.

Each test failed before its fix; the layout ones assert on geometry, as a user would measure it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor
from PySide6.QtWidgets import QAbstractButton, QApplication, QLabel, QMessageBox, QWidget
from pytestqt.qtbot import QtBot

from app import resources
from app.banner import MAX_BANNERS, BannerArea
from app.chat_view import READING_WIDTH
from app.composer import MAX_INPUT_SHARE, Composer
from app.engine_requests import TurnRequest
from app.history import MATCH_END, MATCH_START, SearchHit, StoredMessage
from app.message_widget import AssistantMessageWidget, UserMessageWidget
from app.messages import Action, ErrorInfo, UserMessage
from app.model_setup import ModelSetupDialog
from app.settings import Theme
from app.sidebar import Sidebar, plain_snippet
from app.thinking_pane import ThinkingPane
from app.turn_stream import AnswerStream, TurnUpdate
from engine import (
    ChatEvent,
    PrefillProgress,
    ReaderPool,
    TurnFinished,
    TurnStats,
    UnsupportedDocumentError,
    extract,
)
from tests.app.conftest import MakeWindow

# Offscreen Qt cannot size or raise windows; a Mac can.
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)


@pytest.fixture
def styled() -> Iterator[None]:
    """The app's light stylesheet, as the window applies it."""
    app = QApplication.instance()
    assert isinstance(app, QApplication)
    app.setStyleSheet(resources.stylesheet(dark=False))
    yield
    app.setStyleSheet("")


def open_setup_dialogs() -> list[ModelSetupDialog]:
    return [w for w in QApplication.topLevelWidgets() if isinstance(w, ModelSetupDialog)]


# -- 3: cancelling setup leaves an honest state -----------------------------------------------


def test_cancelled_setup_says_no_model_and_sending_offers_setup(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(load=False)
    window.choose_model()
    dialogs = [d for d in open_setup_dialogs() if d.isVisible()]
    assert len(dialogs) == 1
    dialogs[0].reject()
    composer = window.composer
    assert composer.status_label.text() == "No model chosen"
    assert "Loading" not in composer.status_label.text()
    assert composer.setup_button.isVisible()

    composer.input.setPlainText("Hello there")
    qtbot.keyClick(composer.input, Qt.Key.Key_Return)
    assert composer.text() == "Hello there"  # kept
    (banner,) = window.banners.banners()
    assert banner.message.text.startswith("No model is set up yet.")
    assert "not ready" not in banner.message.text
    assert banner.action_button is not None and banner.action_button.isVisible()
    before = len([d for d in open_setup_dialogs() if d.isVisible()])
    qtbot.mouseClick(banner.action_button, Qt.MouseButton.LeftButton)
    assert len([d for d in open_setup_dialogs() if d.isVisible()]) == before + 1
    for dialog in open_setup_dialogs():
        dialog.reject()
    qtbot.mouseClick(composer.setup_button, Qt.MouseButton.LeftButton)
    assert any(d.isVisible() for d in open_setup_dialogs())
    for dialog in open_setup_dialogs():
        dialog.reject()


def test_a_load_in_progress_says_so_and_hides_the_setup_link(make_window: MakeWindow) -> None:
    window = make_window()  # loads the tiny model
    assert window.controller.model_state == "ready"
    assert not window.composer.setup_button.isVisible()
    assert "context" in window.composer.status_label.text()


# -- 5: the prefill status clears when the prompt is read -------------------------------------


def test_reading_status_ends_with_the_last_prefill_chunk(qtbot: QtBot) -> None:
    widget = AssistantMessageWidget(1, "medium")
    qtbot.addWidget(widget)
    widget.begin()
    widget.apply(TurnUpdate(1, 1, prefill=(91, 100)))
    assert widget.status_label.text() == "Reading the conversation… 91%"
    widget.apply(TurnUpdate(1, 1, prefill=(100, 100)))
    assert "Reading" not in widget.status_label.text()
    assert widget.status_label.text() == "Thinking…"
    widget.apply(TurnUpdate(1, 1, answer="Hi"))
    assert widget.status_label.text() == ""


def test_a_long_prompt_says_how_long_it_has_left(qtbot: QtBot) -> None:
    widget = AssistantMessageWidget(1, "medium")
    qtbot.addWidget(widget)
    widget.begin()
    widget.apply(TurnUpdate(1, 1, prefill=(512, 4096), prefill_eta_s=41.7))
    assert widget.status_label.text() == "Reading the conversation… 12% · about 40 s left"
    widget.apply(TurnUpdate(1, 1, prefill=(1024, 4096), prefill_eta_s=200.0))
    assert widget.status_label.text() == "Reading the conversation… 25% · about 3 min left"
    widget.apply(TurnUpdate(1, 1, prefill=(4000, 4096), prefill_eta_s=1.0))
    assert widget.status_label.text() == "Reading the conversation… 97%"  # nearly done: no ETA


def test_the_stream_passes_the_engines_estimate_on() -> None:
    shown: list[TurnUpdate] = []
    request = TurnRequest(1, 1, 0, "send", "hi", (), "medium")
    stream = AnswerStream(request, None, shown.append, lambda _e: None, interval_s=0.0)

    def events() -> Iterator[ChatEvent]:
        yield PrefillProgress(64, 640, elapsed_s=2.0)
        yield TurnFinished("stop", TurnStats(10, 0, 10, 0, 0, 0, 0, 0.1, 100.0, 0.0, 0.1))

    stream.consume(events())
    assert shown[0].prefill == (64, 640) and shown[0].prefill_eta_s == 18.0


# -- 6: search hits --------------------------------------------------------------------------


def test_a_selected_hit_draws_only_its_label(qtbot: QtBot, styled: None) -> None:
    sidebar = Sidebar()
    qtbot.addWidget(sidebar)
    sidebar.resize(260, 500)
    sidebar.show()
    snippet = f"keep it **{MATCH_START}short{MATCH_END}** and `plain`"
    sidebar.show_hits([SearchHit(7, "Style advice", snippet, 3)])
    item = sidebar.list.item(0)
    label = sidebar.list.itemWidget(item)
    assert isinstance(label, QLabel)
    qtbot.waitUntil(lambda: label.width() >= sidebar.list.viewport().width() - 20)  # laid out
    # The whole label shows: the chat rows' padding once cut its snippet line in half.
    assert label.height() >= label.heightForWidth(label.width())
    sidebar.list.setCurrentItem(item)
    # Nothing of the item itself is painted under the label (it was the title, in the
    # selection colour, over the snippet); VoiceOver still reads the title.
    assert not item.text()
    assert item.data(Qt.ItemDataRole.AccessibleTextRole) == "Style advice"
    width = sidebar.list.viewport().width() - 8
    assert item.sizeHint().height() >= label.heightForWidth(width)
    assert "**" not in label.text() and "`" not in label.text()
    assert "<b>short</b>" in label.text()


@pytest.mark.parametrize(
    ("markdown", "plain"),
    [
        ("keep it **short**", "keep it short"),
        ("use `git status` first", "use git status first"),
        ("## Steps\n- one\n- two", "Steps one two"),
        ("see [the docs](https://example.com/x)", "see the docs"),
        ("2 * 3 = 6 and __bold__", "2 * 3 = 6 and bold"),
        (f"**{MATCH_START}hit{MATCH_END}**", f"{MATCH_START}hit{MATCH_END}"),
    ],
)
def test_snippets_read_as_text_not_markdown(markdown: str, plain: str) -> None:
    assert plain_snippet(markdown) == plain


# -- 7: banners neither pile up nor repeat, and speak plainly ------------------------------


def test_the_same_words_replace_their_banner_even_at_another_level(qtbot: QtBot) -> None:
    area = BannerArea()
    qtbot.addWidget(area)
    too_big = "report.pdf is too long for this chat. Remove it or start a new chat."
    area.show_message(UserMessage("warning", too_big, topic="fit"))
    area.show_message(UserMessage("error", too_big, topic="fit"))
    assert [b.message.level for b in area.banners()] == ["error"]
    area.show_message(UserMessage("warning", "The 3 documents are too long.", topic="fit"))
    assert area.texts() == ["The 3 documents are too long."]
    for i in range(5):
        area.show_message(UserMessage("error", f"Problem {i}."))
    assert len(area.banners()) == MAX_BANNERS <= 2
    area.show_message(UserMessage("warning", "Still too long.", topic="fit"))
    area.withdraw("fit")
    assert "Still too long." not in area.texts()


def test_a_banner_action_runs_and_closes_the_banner(qtbot: QtBot) -> None:
    area = BannerArea()
    qtbot.addWidget(area)
    area.show()
    ran: list[bool] = []
    area.show_message(
        UserMessage("info", "No model.", action=Action("Set Up…", lambda: ran.append(True)))
    )
    (banner,) = area.banners()
    assert banner.action_button is not None and banner.action_button.text() == "Set Up…"
    qtbot.mouseClick(banner.action_button, Qt.MouseButton.LeftButton)
    assert ran == [True] and area.banners() == []


def test_a_damaged_pdf_is_described_without_the_library_exception(tmp_path: Path) -> None:
    broken = tmp_path / "broken.pdf"
    broken.write_bytes(b"%PDF-1.7\n1 0 obj << /Type /Catalog /Pages 2 0 R >>\nendobj\nxref\n")
    with pytest.raises(UnsupportedDocumentError) as caught:
        extract(broken)
    cause = type(caught.value.__cause__).__name__
    info = ErrorInfo.from_exception(caught.value)
    assert info.text.startswith("broken.pdf could not be read")
    assert info.text.endswith("PDF file.")
    assert cause not in info.text  # the sentence does not carry it, the details do
    assert cause in info.details
    # The same through the app's reader process, where the cause crosses as text.
    pool = ReaderPool()
    try:
        with pytest.raises(UnsupportedDocumentError) as read:
            pool.read(broken).result(timeout=60)
    finally:
        pool.shutdown()
    info = ErrorInfo.from_exception(read.value)
    assert info.text == str(caught.value)
    assert cause not in info.text and cause in info.details


# -- 8: reading width and a message box that grows ------------------------------------------


def test_wide_windows_keep_a_reading_column(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(load=False)
    window.resize(1440, 900)
    widget = window.view.add_user("A line of text. " * 200)
    qtbot.waitUntil(lambda: widget.width() > 0 and window.view.viewport().width() > 1000)
    qtbot.wait(10)
    assert widget.width() <= READING_WIDTH
    viewport = window.view.viewport()
    left = widget.mapTo(viewport, widget.rect().topLeft()).x()
    right = viewport.width() - (left + widget.width())
    assert abs(left - right) <= 2  # centred
    composer = window.composer
    assert 0.9 * READING_WIDTH <= composer.width() <= READING_WIDTH
    window.resize(700, 600)
    qtbot.waitUntil(lambda: window.view.viewport().width() < 700)
    assert widget.width() >= window.view.viewport().width() - 60  # narrow: the whole width


def test_the_message_box_grows_with_its_text_up_to_a_share_of_the_window(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(load=False)
    window.resize(1100, 800)
    qtbot.wait(10)
    field = window.composer.input
    line = field.fontMetrics().lineSpacing()
    empty = field.height()
    assert empty <= 3 * line + 16
    field.setPlainText("\n".join(f"line {i}" for i in range(8)))
    assert field.height() >= 8 * line
    field.setPlainText("\n".join(f"line {i}" for i in range(200)))
    assert window.height() * MAX_INPUT_SHARE - line <= field.height()
    assert field.height() <= window.height() * MAX_INPUT_SHARE
    assert window.composer.send_button.isVisible()
    field.clear()
    assert field.height() == empty
    for i in range(6):  # typed: no line may hide behind a scroll bar below the cap
        qtbot.keyClicks(field, f"line {i} of a message")
        qtbot.keyClick(field, Qt.Key.Key_Return, Qt.KeyboardModifier.ShiftModifier)
    assert field.verticalScrollBar().maximum() == 0
    assert field.height() >= 7 * line


def test_the_last_prefill_chunk_reaches_the_view_before_any_text() -> None:
    """A model that reasons silently (or writes nothing readable) must not leave "Reading… 91%"."""
    shown: list[TurnUpdate] = []
    request = TurnRequest(1, 1, 0, "send", "hi", (), "medium")
    stream = AnswerStream(request, None, shown.append, lambda _e: None, interval_s=60.0)

    def events() -> Iterator[ChatEvent]:
        yield PrefillProgress(91, 100)
        yield PrefillProgress(100, 100)
        # The decoder now runs for a while; the view already knows the prompt is read.
        assert shown and shown[-1].prefill == (100, 100)
        yield TurnFinished("stop", TurnStats(10, 0, 10, 0, 0, 0, 0, 0.1, 100.0, 0.0, 0.1))

    stream.consume(events())


# -- 10: details ------------------------------------------------------------------------------


def icon_lightness(button: QAbstractButton) -> int:
    """The lightness of the icon's darkest drawn pixel (its strokes)."""
    image = button.icon().pixmap(32, 32).toImage()
    values = [
        image.pixelColor(x, y).lightness()
        for x in range(image.width())
        for y in range(image.height())
        if image.pixelColor(x, y).alpha() > 200
    ]
    assert values, "the icon draws nothing"
    return min(values)


def test_icons_are_redrawn_light_in_dark_mode(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(load=False)
    window.settings.update(theme=Theme.LIGHT)
    attach = window.composer.attach_button
    assert icon_lightness(attach) < 100
    window.settings.update(theme=Theme.DARK)
    assert icon_lightness(attach) > 150
    assert icon_lightness(window.sidebar.new_button) > 150
    window.settings.update(theme=Theme.LIGHT)
    assert icon_lightness(attach) < 100


def button_background(button: QAbstractButton) -> QColor:
    image = button.grab().toImage()
    return image.pixelColor(3, image.height() // 2)  # inside the rounded corner, left of text


def test_the_chosen_effort_does_not_look_hovered(qtbot: QtBot, styled: None) -> None:
    composer = Composer(QWidget())
    qtbot.addWidget(composer)
    composer.show()
    composer.set_effort("medium")
    chosen, other = composer.effort_buttons["medium"], composer.effort_buttons["low"]
    other.setAttribute(Qt.WidgetAttribute.WA_UnderMouse, True)
    hovered = button_background(other)
    plain = button_background(composer.effort_buttons["high"])
    picked = button_background(chosen)
    assert hovered != plain  # hover shows ...
    distance = (
        abs(picked.red() - hovered.red())
        + abs(picked.green() - hovered.green())
        + abs(picked.blue() - hovered.blue())
    )
    assert distance > 120  # ... and the chosen one is clearly something else


def test_the_reasoning_toggle_looks_the_same_open_and_closed(qtbot: QtBot, styled: None) -> None:
    pane = ThinkingPane()
    qtbot.addWidget(pane)
    pane.append("Some thoughts.")
    pane.show()
    pane.set_expanded(False)
    closed = button_background(pane.toggle)
    pane.set_expanded(True)
    opened = button_background(pane.toggle)
    assert closed == opened


def test_a_reopened_answer_still_says_how_long_it_thought(qtbot: QtBot) -> None:
    widget = AssistantMessageWidget(5, "high")
    qtbot.addWidget(widget)
    stored = StoredMessage(
        5, 1, 1, "assistant", "The answer.", "Let me think.", "complete", "high", 0.0,
        stats={"thinking_s": 4.25, "reasoning_tokens": 12},
    )  # fmt: skip
    widget.restore(stored)
    assert "thought for 4.2 s" in widget.thinking.toggle.text()
    stopped = AssistantMessageWidget(6, "low")
    qtbot.addWidget(stopped)
    stopped.restore(replace(stored, id=6, content="", status="cancelled"))
    assert stopped.status_label.text() == "Stopped before the answer began."  # as it said live


def test_attachments_show_an_icon_not_an_emoji(qtbot: QtBot) -> None:
    widget = UserMessageWidget("Read this", ["report.pdf · 3 pages · 1,200 tokens"])
    qtbot.addWidget(widget)
    labels = widget.findChildren(QLabel)
    assert not any("📎" in label.text() for label in labels)
    assert any(label.text().startswith("report.pdf") for label in labels)
    assert any(not label.pixmap().isNull() for label in labels)


def test_delete_confirmation_names_the_chat(qtbot: QtBot, make_window: MakeWindow) -> None:
    window = make_window(load=False)
    chat = window.store.create_conversation("Trip to Lisbon")
    window.confirm_delete(chat)
    boxes = [b for b in window.findChildren(QMessageBox) if b.isVisible()]
    assert len(boxes) == 1
    assert "Trip to Lisbon" in boxes[0].text()
    boxes[0].reject()


def test_the_window_cannot_be_squeezed_below_a_usable_size(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    window = make_window(load=False)
    window.resize(200, 100)
    qtbot.wait(10)
    assert window.width() >= 700 and window.height() >= 440
    assert window.composer.send_button.isVisible()
    assert window.view.height() >= 120


def test_a_long_setup_error_is_shown_whole(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = ModelSetupDialog(download_dir=tmp_path / "dl", token=False)
    qtbot.addWidget(dialog)
    dialog.show()
    deep = tmp_path.joinpath(*(["modelsfolder" * 6] * 3))  # a path that wraps over lines
    deep.mkdir(parents=True)
    assert not dialog.select_model_folder(deep)
    label = dialog.model_status_label
    assert "holds no config.json" in label.text()
    qtbot.wait(20)
    # The window grew to the label's wrapped height: its last line was cut off.
    assert label.height() >= label.heightForWidth(label.width())
    parent = label.parentWidget()
    assert parent is not None and label.geometry().bottom() <= parent.height()
