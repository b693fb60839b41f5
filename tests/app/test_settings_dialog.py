"""The Settings window's cached-prompts row: the limit is a setting, the size is what is on disk,
and Clear empties the folder through the engine thread (which owns the cache)."""

from __future__ import annotations

from pathlib import Path

from pytestqt.qtbot import QtBot

from app.engine_client import EngineClient
from app.engine_worker import EngineWorker
from app.settings import SettingsStore
from app.settings_dialog import SettingsDialog

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
