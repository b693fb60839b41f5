"""The Settings window's cached-prompts row: the limit is a setting, the size is what is on disk,
and Clear empties the folder through the engine thread (which owns the cache)."""

from __future__ import annotations

import itertools
from pathlib import Path

import pytest
from PySide6.QtWidgets import QLabel, QListWidget, QVBoxLayout, QWidget
from pytestqt.qtbot import QtBot

from app.engine_client import EngineClient
from app.engine_worker import EngineWorker
from app.settings import AnswerLength, SettingsStore
from app.settings_dialog import SettingsDialog
from tests.app.conftest import MakeWindow

TIMEOUT_MS = 10_000


def test_cached_prompts_are_shown_limited_and_cleared(qtbot: QtBot, tmp_path: Path) -> None:
    folder = tmp_path / "prompts"
    folder.mkdir()
    (folder / "1.kv.safetensors").write_bytes(b"\0" * 3_000_000)
    (folder / "2.kv.safetensors").write_bytes(b"\0" * 2_000_000)
    (folder / "notes.txt").write_text("not a cache: never counted or deleted")
    client = EngineClient(EngineWorker(history_path=None, prompt_cache_dir=folder))
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    dialog = SettingsDialog(store, engine=client)
    qtbot.addWidget(dialog)
    try:
        assert dialog.prompt_cache_used.text() == "5 MB in use"
        assert dialog.prompt_cache_gb.value() == 5.0
        dialog.prompt_cache_gb.setValue(2.5)
        assert store.settings.prompt_cache_gb == 2.5
        with qtbot.waitSignal(client.prompt_cache_cleared, timeout=TIMEOUT_MS) as cleared:
            dialog.clear_prompt_cache.click()
        assert cleared.args == [5_000_000]
        assert dialog.prompt_cache_used.text() == "Cleared 5 MB"
        assert not dialog.clear_prompt_cache.isEnabled()
        assert sorted(p.name for p in folder.iterdir()) == ["notes.txt"]
    finally:
        assert client.shutdown()


def test_without_a_prompt_cache_there_is_nothing_to_clear(qtbot: QtBot, tmp_path: Path) -> None:
    dialog = SettingsDialog(SettingsStore.in_file(tmp_path / "settings.ini"))
    qtbot.addWidget(dialog)
    assert dialog.prompt_cache_used.text() == "nothing in use"
    assert not dialog.clear_prompt_cache.isEnabled()


@pytest.mark.qt_log_ignore("This plugin does not support (propagateSizeHints|raise)")
def test_the_model_folder_shows_the_model_in_use(
    qtbot: QtBot, make_window: MakeWindow, model_dir: Path
) -> None:
    window = make_window()  # loaded as `--model DIR` does: the folder is not in the settings
    assert window.settings.settings.model_dir == ""
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    assert dialog.model_dir.text() == str(model_dir)
    other = str(model_dir.parent / "other-model")
    window.load_model(other)  # e.g. File › Choose Model: the field follows the load
    assert dialog.model_dir.text() == other


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_instructions_and_answer_length_apply_as_typed(qtbot: QtBot, tmp_path: Path) -> None:
    store = SettingsStore.in_file(tmp_path / "settings.ini")
    dialog = SettingsDialog(store)
    qtbot.addWidget(dialog)
    dialog.show()
    assert dialog.instructions.toPlainText() == ""
    dialog.instructions.setFocus()
    qtbot.keyClicks(dialog.instructions, "Be brief")
    dialog.instructions.textCursor().insertText("\nUse metric units")
    assert store.settings.custom_instructions == "Be brief\nUse metric units"
    # writing the setting back into the box must not move the cursor to the start
    assert dialog.instructions.textCursor().position() == len("Be brief\nUse metric units")
    dialog.answer_length.setCurrentIndex(dialog.answer_length.findData("long"))
    assert store.settings.answer_length is AnswerLength.LONG
    store.update(answer_length=AnswerLength.SHORT)  # e.g. changed in another window
    assert dialog.answer_length.currentData() == "short"
    assert dialog.instructions.accessibleName() == "Custom instructions"


def library_section() -> QWidget:
    """Like Settings › Library folders: a wrapped explanation over a list."""
    section = QWidget()
    layout = QVBoxLayout(section)
    note = QLabel("Ask the model to search your library in any chat to search these folders. " * 2)
    note.setWordWrap(True)  # its height depends on its width, which is what upset the form
    layout.addWidget(note)
    layout.addWidget(QListWidget())
    return section


@pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")
def test_the_instructions_box_never_covers_the_rows_below_it(qtbot: QtBot, tmp_path: Path) -> None:
    library = library_section()
    dialog = SettingsDialog(SettingsStore.in_file(tmp_path / "settings.ini"), library=library)
    qtbot.addWidget(dialog)
    dialog.show()
    qtbot.waitExposed(dialog)
    rows = [dialog.effort, dialog.temperature, dialog.instructions, dialog.answer_length]
    rows.append(dialog.show_reasoning)
    for above, below in itertools.pairwise(rows):
        assert above.geometry().bottom() < below.geometry().top(), (above, below)
    assert dialog.instructions.height() >= 4 * dialog.instructions.fontMetrics().lineSpacing()


@pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)
def test_every_section_fits_a_laptop_screen_on_its_own_page(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    """All sections in one column grew past a 900-pixel screen (Server out of reach); each
    subject now has its page, and the tallest page decides the window's height."""
    window = make_window()
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    titles = [dialog.pages.tabText(i) for i in range(dialog.pages.count())]
    assert titles == ["General", "Model", "Library", "Tools", "Server"]
    assert dialog.sizeHint().height() <= 760
    for title in titles:
        dialog.show_page(title)
        page = dialog.pages.currentWidget()
        assert page.isVisible()
        assert page.sizeHint().height() <= dialog.pages.height()
