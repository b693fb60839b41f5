"""Settings: typed defaults, stored as strings with a version, one `changed` signal, and a value
that cannot be read falls back to its default."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from pytestqt.qtbot import QtBot

from app.settings import SETTINGS_VERSION, AnswerLength, Profile, Settings, SettingsStore, Theme
from engine import ReasoningEffort


def test_defaults_match_openai_and_the_template(tmp_path: Path) -> None:
    settings = SettingsStore.in_file(tmp_path / "s.ini").settings
    assert settings == Settings()
    assert settings.reasoning_effort is ReasoningEffort.MEDIUM
    assert settings.temperature == 1.0
    assert settings.profile is Profile.AUTO and settings.theme is Theme.SYSTEM


def test_changes_are_written_as_strings_and_read_back(qtbot: QtBot, tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    store = SettingsStore.in_file(path)
    with qtbot.waitSignal(store.changed, timeout=1000) as changed:
        store.update(reasoning_effort=ReasoningEffort.HIGH, theme=Theme.DARK, temperature=0.5)
    assert changed.args[0].reasoning_effort is ReasoningEffort.HIGH
    text = path.read_text()
    assert "reasoning_effort=high" in text and "theme=dark" in text
    assert f"version={SETTINGS_VERSION}" in text
    again = SettingsStore.in_file(path).settings
    assert (again.reasoning_effort, again.theme, again.temperature) == (
        ReasoningEffort.HIGH,
        Theme.DARK,
        0.5,
    )


def test_an_unchanged_value_emits_nothing(qtbot: QtBot, tmp_path: Path) -> None:
    store = SettingsStore.in_file(tmp_path / "s.ini")
    with qtbot.assertNotEmitted(store.changed):
        store.update(reasoning_effort=ReasoningEffort.MEDIUM)


def test_unreadable_values_fall_back_to_defaults(tmp_path: Path) -> None:
    raw = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    raw.setValue("reasoning_effort", "extreme")
    raw.setValue("show_reasoning", "maybe")
    raw.setValue("temperature", "hot")
    raw.setValue("collapse_reasoning_when_done", "false")
    raw.sync()
    settings = SettingsStore.in_file(tmp_path / "s.ini").settings
    assert settings.reasoning_effort is ReasoningEffort.MEDIUM
    assert settings.show_reasoning is True and settings.temperature == 1.0
    assert settings.collapse_reasoning_when_done is False


def test_multi_line_instructions_and_the_answer_length_are_kept(tmp_path: Path) -> None:
    path = tmp_path / "s.ini"
    text = 'I am a biologist.\nBe concise; use SI units, "quotes" and = signs.\n\nThanks'
    SettingsStore.in_file(path).update(custom_instructions=text, answer_length=AnswerLength.SHORT)
    assert "answer_length=short" in path.read_text()
    again = SettingsStore.in_file(path).settings
    assert again.custom_instructions == text
    assert again.answer_length is AnswerLength.SHORT
    assert Settings().answer_length is AnswerLength.NORMAL and Settings().custom_instructions == ""


def test_an_unknown_answer_length_falls_back_to_normal(tmp_path: Path) -> None:
    raw = QSettings(str(tmp_path / "s.ini"), QSettings.Format.IniFormat)
    raw.setValue("answer_length", "epic")
    raw.sync()
    assert SettingsStore.in_file(tmp_path / "s.ini").settings.answer_length is AnswerLength.NORMAL
