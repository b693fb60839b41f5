"""Settings › Model › Use a server and a chat through it, in the real window and engine thread,
against a fake vLLM-shaped server on loopback with the real openai client. The token goes to a
test keychain (an in-memory keyring backend), never to the settings file or the history."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import keyring
import pytest
from keyring.backend import KeyringBackend
from keyring.errors import PasswordDeleteError
from PySide6.QtCore import QSettings, Qt
from pytestqt.qtbot import QtBot

from app.engine_requests import ModelInfo
from app.main_window import MainWindow
from app.remote_backend import KEYCHAIN_SERVICE, RemoteModelInfo
from app.remote_session import EstimatingTokenizer
from app.remote_settings import KEPT, RemoteSettings
from app.settings import SettingsStore
from tests.app.conftest import LOAD_TIMEOUT_MS, TURN_TIMEOUT_MS, MakeWindow
from tests.app.test_chat_flow import last_answer, send
from tests.app.test_documents import drop, wait_read
from tests.app.test_remote_client import ANSWER, REASONING, TOKEN, Fake, run_fake

# The offscreen platform's notices when a window is shown and raised; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)


class MemoryKeyring(KeyringBackend):
    priority = 1

    def __init__(self) -> None:
        super().__init__()
        self.kept: dict[tuple[str, str], str] = {}

    def get_password(self, service: str, username: str) -> str | None:
        return self.kept.get((service, username))

    def set_password(self, service: str, username: str, password: str) -> None:
        self.kept[(service, username)] = password

    def delete_password(self, service: str, username: str) -> None:
        if self.kept.pop((service, username), None) is None:
            raise PasswordDeleteError(username)


@pytest.fixture
def keychain() -> Iterator[MemoryKeyring]:
    before = keyring.get_keyring()
    memory = MemoryKeyring()
    keyring.set_keyring(memory)
    yield memory
    keyring.set_keyring(before)


@pytest.fixture
def vllm() -> Iterator[Fake]:
    yield from run_fake(Fake("vllm"))


def enter(widget: Any, text: str) -> None:
    """What typing into a field and leaving it does."""
    widget.setText(text)
    widget.editingFinished.emit()


def test_the_token_goes_to_the_keychain_and_probe_lists_the_models(
    qtbot: QtBot, tmp_path: Path, keychain: MemoryKeyring, vllm: Fake
) -> None:
    ini = tmp_path / "settings.ini"
    store = SettingsStore(QSettings(str(ini), QSettings.Format.IniFormat))
    page = RemoteSettings(store)
    qtbot.addWidget(page)
    assert page.where.text() == "Answers are computed on this Mac."
    page.probe_button.click()  # nothing is sent before there is an address
    assert page.probe_result.text() == "Enter the server's address first."
    assert vllm.requests == []
    enter(page.url, vllm.url + "/v1")
    enter(page.token, TOKEN)
    assert keychain.kept == {(KEYCHAIN_SERVICE, vllm.url + "/v1"): TOKEN}
    assert page.token.text() == "" and page.token.placeholderText() == KEPT
    page.verify_tls.setChecked(False)
    page.use_server.setChecked(True)
    assert page.where.text() == "Answers are computed on 127.0.0.1."
    page.probe_button.click()
    qtbot.waitUntil(lambda: page.probe_button.isEnabled(), timeout=5000)
    assert page.probe_result.text() == (
        "1 model(s): openai/gpt-oss-20b. API: Chat Completions only."
    )
    assert page.model.itemText(0) == "openai/gpt-oss-20b"
    saved = ini.read_text(encoding="utf-8")
    assert "remote_url" in saved and "remote_verify_tls=false" in saved
    assert TOKEN not in saved

    keychain.kept.clear()  # the token is gone: the probe says what to do
    page.probe_button.click()
    qtbot.waitUntil(lambda: page.probe_button.isEnabled(), timeout=5000)
    assert page.probe_result.text().startswith("127.0.0.1 refused the API token;")


def _fake_local(path: str, profile: str, progress: Any) -> Any:
    return (
        object(),
        EstimatingTokenizer(),
        ModelInfo(path=path, context_tokens=4096, profile="full"),
    )


def test_a_chat_through_a_server_streams_reasoning_and_answer_with_effort_and_regenerate(
    qtbot: QtBot, make_window: MakeWindow, data_dir: Path, keychain: MemoryKeyring, vllm: Fake
) -> None:
    window: MainWindow = make_window(loader=_fake_local, model=Path("/models/gpt-oss-20b"))
    assert window.composer.status_label.text().startswith("gpt-oss-20b on this Mac · ")
    assert "Everything stays on this Mac." in window.view.empty_hint.text()
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    page = dialog.remote
    enter(page.url, vllm.url + "/v1")
    enter(page.token, TOKEN)
    page.use_server.setChecked(True)  # turning it on connects: the probe replaces the model
    qtbot.waitUntil(
        lambda: isinstance(window.engine.model, RemoteModelInfo), timeout=LOAD_TIMEOUT_MS
    )
    status = window.composer.status_label.text()
    assert status.startswith("openai/gpt-oss-20b on 127.0.0.1 · "), status
    # Where a new chat starts, the window no longer promises that everything stays here.
    assert "Answers come from 127.0.0.1" in window.view.empty_hint.text()
    assert "stays on this Mac" not in window.view.empty_hint.text()
    dialog.close()

    window.controller.set_effort("high")
    result = send(qtbot, window, "Hi")
    assert result.status == "complete"
    widget = last_answer(window)
    assert widget.answer_text() == "".join(ANSWER)
    assert widget.thinking.text == "".join(REASONING)
    assert widget.facts_label.text().startswith("High effort")
    assert vllm.requests[-1]["reasoning_effort"] == "high"
    assert vllm.requests[-1]["messages"][-1] == {"role": "user", "content": "Hi"}

    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS):
        window.menu_actions.regenerate.trigger()
    assert [m["content"] for m in vllm.requests[-1]["messages"] if m["role"] != "system"] == ["Hi"]
    conversation = window.controller.conversation_id
    assert conversation is not None
    _, stored = window.store.get_conversation(conversation)
    assert [(m.role, m.content) for m in stored] == [
        ("user", "Hi"),
        ("assistant", "Hello from the server."),
    ]
    for path in data_dir.iterdir():  # the token is in the keychain only
        if path.is_file():
            assert TOKEN.encode() not in path.read_bytes(), path


def remote_window(
    qtbot: QtBot, make_window: MakeWindow, keychain: MemoryKeyring, fake: Fake
) -> MainWindow:
    """A window set to answer through `fake` (its token in the keychain), connected."""
    keychain.set_password(KEYCHAIN_SERVICE, fake.url + "/v1", TOKEN)
    window = make_window(load=False)
    window.settings.update(remote_enabled=True, remote_url=fake.url + "/v1")
    window.load_model("")
    qtbot.waitUntil(lambda: window.engine.model is not None, timeout=LOAD_TIMEOUT_MS)
    return window


@pytest.fixture
def cutting() -> Iterator[Fake]:
    yield from run_fake(Fake("lmstudio", cut_after=3))


def test_a_stream_cut_in_the_window_keeps_the_partial_answer_and_says_why(
    qtbot: QtBot, make_window: MakeWindow, keychain: MemoryKeyring, cutting: Fake
) -> None:
    window = remote_window(qtbot, make_window, keychain, cutting)
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        window.composer.set_text("Hi")
        qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    result = done.args[0]
    assert result.status == "error" and result.error is not None
    assert result.error.text.startswith("The connection to 127.0.0.1 broke while the answer")
    assert last_answer(window).answer_text() == "Hello from the"
    assert window.banners.isVisible()
    _, stored = window.store.get_conversation(window.controller.conversation_id or 0)
    assert stored[-1].content == "Hello from the"


def test_an_attached_document_goes_to_the_server_as_text(
    qtbot: QtBot, make_window: MakeWindow, tmp_path: Path, keychain: MemoryKeyring, vllm: Fake
) -> None:
    window = remote_window(qtbot, make_window, keychain, vllm)
    doc = tmp_path / "notes.txt"
    doc.write_text("The meeting moved to Thursday at noon.", encoding="utf-8")
    drop(window, [doc])
    wait_read(qtbot, window, 1)
    send(qtbot, window, "When is the meeting?")
    sent = vllm.requests[-1]["messages"][-1]["content"]
    assert "The meeting moved to Thursday at noon." in sent and "When is the meeting?" in sent
    assert "notes.txt" in sent


@pytest.fixture
def silent() -> Iterator[Fake]:
    yield from run_fake(Fake("vllm", stall_s=1.5))


def test_stop_ends_a_remote_answer_while_the_server_is_silent(
    qtbot: QtBot, make_window: MakeWindow, keychain: MemoryKeyring, silent: Fake
) -> None:
    window = remote_window(qtbot, make_window, keychain, silent)
    window.composer.set_text("Hi")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    widget = last_answer(window)
    qtbot.waitUntil(lambda: widget.thinking.text == "".join(REASONING), timeout=TURN_TIMEOUT_MS)
    started = time.monotonic()
    with qtbot.waitSignal(window.controller.turn_completed, timeout=5000) as done:
        window.menu_actions.stop.trigger()
    assert time.monotonic() - started < 0.5  # the server is still silent for a second
    assert done.args[0].status == "cancelled"
    assert widget.status_label.text() == "Stopped before the answer began."
    _, stored = window.store.get_conversation(window.controller.conversation_id or 0)
    assert stored[-1].status == "cancelled" and stored[-1].reasoning == "".join(REASONING)
