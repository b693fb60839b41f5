"""Settings › Library folders: a folder added there is indexed in the background and watched, so
a file added, saved or deleted later is indexed again or forgotten after one debounced rescan;
"search my library" in a chat then searches its documents (tiny real engine, scripted tokens)."""

from __future__ import annotations

from pathlib import Path

import pytest
from pytestqt.qtbot import QtBot

from app.library_folders import LibraryFoldersPage
from app.library_indexer import LibraryIndexer
from app.main_window import MainWindow
from app.settings_dialog import SettingsDialog
from engine import HarmonyTokenizer, Library
from tests.app.conftest import TURN_TIMEOUT_MS, MakeWindow
from tests.app.test_chat_flow import last_answer, send
from tests.app.test_document_browsing import browser_call, browsing_window, final, script_tokens
from tests.engine.library.documents import touch_later, write_docx, write_text

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

DEBOUNCE_MS = 100


def folders_page(window: MainWindow) -> LibraryFoldersPage:
    """Settings › Library folders, as the user opens it."""
    window.show_settings()
    (dialog,) = window.findChildren(SettingsDialog)
    dialog.show_page("Library")
    (page,) = dialog.findChildren(LibraryFoldersPage)
    assert page.isVisible()
    return page


def names(library_path: Path) -> list[str]:
    with Library(library_path) as library:
        return sorted(d.name for d in library.documents() if d.searchable)


def test_a_watched_folder_is_indexed_and_follows_changes_on_disk(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, data_dir: Path
) -> None:
    window = make_window(load=False)
    indexer = window.library
    assert isinstance(indexer, LibraryIndexer)
    indexer.debounce.setInterval(DEBOUNCE_MS)
    folder = tmp_path / "notes"
    (folder / "trips").mkdir(parents=True)
    write_text(folder / "plans.md", "# Plans\n\nThe wombat survey starts in March.")
    write_docx(folder / "trips" / "iceland.docx", ["Glacier walk on the second day."])
    library = data_dir / "library.sqlite3"

    page = folders_page(window)
    page.add_folder(folder)
    qtbot.waitUntil(lambda: page.rows() == [f"{folder} · 2 documents"], timeout=TURN_TIMEOUT_MS)
    assert names(library) == ["iceland.docx", "plans.md"]

    # Saved, added (in a subfolder) and deleted: one rescan after the burst catches all three.
    write_text(folder / "plans.md", "# Plans\n\nThe quokka survey starts in May instead.")
    touch_later(folder / "plans.md")
    write_text(folder / "trips" / "norway.txt", "Fjord ferry at dawn.")
    (folder / "trips" / "iceland.docx").unlink()
    qtbot.waitUntil(lambda: names(library) == ["norway.txt", "plans.md"], timeout=TURN_TIMEOUT_MS)
    with Library(library) as opened:
        assert [h.document.name for h in opened.search("quokka")] == ["plans.md"]
        assert opened.search("wombat") == []
    qtbot.waitUntil(lambda: page.rows() == [f"{folder} · 2 documents"], timeout=TURN_TIMEOUT_MS)

    # Removing the folder forgets its documents; the files stay.
    page.list.setCurrentRow(0)
    page.remove_button.click()
    qtbot.waitUntil(lambda: page.rows() == [], timeout=TURN_TIMEOUT_MS)
    assert names(library) == [] and (folder / "plans.md").is_file()


def test_search_my_library_searches_the_watched_folders(
    qtbot: QtBot,
    make_window: MakeWindow,
    real_tok: HarmonyTokenizer,
    tmp_path: Path,
    data_dir: Path,
) -> None:
    window, script = browsing_window(make_window, real_tok)
    folder = tmp_path / "notes"
    folder.mkdir()
    notes = write_text(folder / "turbines.md", "The Halvorsen turbine runs at Kestrel Bay.")
    page = folders_page(window)
    page.add_folder(folder)
    qtbot.waitUntil(lambda: page.rows() == [f"{folder} · 1 document"], timeout=TURN_TIMEOUT_MS)

    script_tokens(
        script,
        browser_call("search", '{"query": "Halvorsen turbine"}'),
        browser_call("open", '{"id": 0}'),
        final("At Kestrel Bay 【1†L0】."),
    )
    result = send(qtbot, window, "Search my library: where does the Halvorsen turbine run?")
    assert result.status == "complete"
    asked = next(m.text for m in script.sessions[-1].messages if m.role == "user")
    assert asked.startswith("Search my document library with the browser tool to answer.")
    searched, opened = last_answer(window).thinking.steps
    assert searched.startswith("searched: Halvorsen turbine (")
    assert opened.startswith("opened turbines.md")
    assert result.citations is not None
    (cited,) = result.citations.citations
    assert cited.target is not None and cited.target.path == notes.resolve()
