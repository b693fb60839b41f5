"""Settings › Server (issue 13): the running app serves its loaded model over the API, through
the engine thread. The real window, engine thread and tiny model; uvicorn on loopback; the
official openai SDK as the client; sampling scripted (tests/app/scripting.py)."""

from __future__ import annotations

import socket
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx2
import openai
import pytest
from openai import OpenAI
from PySide6.QtCore import Qt, QThread
from pytestqt.qtbot import QtBot

import app.launch
from app.app_server import KEY_FILE, AppServer
from app.main_window import MainWindow
from app.message_widget import AssistantMessageWidget
from app.remote_backend import RemoteModelInfo
from app.remote_session import EstimatingTokenizer
from app.server_settings import ServerSettings
from engine import HarmonyTokenizer
from tests.app.conftest import LOAD_TIMEOUT_MS, TURN_TIMEOUT_MS, MakeWindow
from tests.app.scripting import ScriptedSessions

pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

WAIT_S = 20.0


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def open_server_settings(window: MainWindow) -> ServerSettings:
    window.show_settings()
    dialog = window._settings_dialog
    assert dialog is not None
    page = dialog.findChild(ServerSettings)
    assert page is not None, "Settings has no Server section"
    return page


def switch_on(qtbot: QtBot, page: ServerSettings, port: int) -> None:
    page.port.setValue(port)
    qtbot.mouseClick(page.enabled, Qt.MouseButton.LeftButton)


def server_of(window: MainWindow) -> AppServer:
    assert window.app_server is not None
    return window.app_server


def client(port: int, key: str) -> OpenAI:
    return OpenAI(
        base_url=f"http://127.0.0.1:{port}/v1", api_key=key, max_retries=0, timeout=WAIT_S
    )


def scripted_window(
    make_window: MakeWindow, tok: HarmonyTokenizer, **options: Any
) -> tuple[MainWindow, ScriptedSessions]:
    """The window and its server share one scripted sampler, so a test scripts every turn and
    request in the order the engine thread is to run them."""
    scripted = ScriptedSessions(tok)
    window = make_window(session_factory=scripted, **options)
    window.engine.worker.served.session_options["sampler"] = scripted.sampler
    return window, scripted


def in_thread(call: Callable[[], Any]) -> tuple[threading.Thread, list[Any]]:
    """Runs `call` on a thread; `out` gets its result, or the exception it raised."""
    out: list[Any] = []

    def run() -> None:
        try:
            out.append(call())
        except Exception as e:
            out.append(e)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return thread, out


def refused(port: int) -> bool:
    try:
        with httpx2.Client(timeout=2.0) as http:
            http.get(f"http://127.0.0.1:{port}/v1/models")
    except httpx2.ConnectError:
        return True
    return False


def test_switched_on_in_settings_the_sdk_is_answered_by_the_engine_thread(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, data_dir: Path, model_dir: Path
) -> None:
    window, scripted = scripted_window(make_window, tok)
    threads: list[QThread] = []
    scripted.sampler.on_sample = lambda i: threads.append(QThread.currentThread())
    page = open_server_settings(window)
    assert not page.enabled.isChecked() and not page.network.isChecked()  # off, local by default
    port = free_port()
    switch_on(qtbot, page, port)

    expected = f"Serving {model_dir.name} at http://127.0.0.1:{port}/v1"
    assert page.status.text() == expected
    assert page.url.text() == f"http://127.0.0.1:{port}/v1"
    key_file = data_dir / KEY_FILE
    key = key_file.read_text().strip()
    assert page.token.text() == key and key.startswith("osk-")
    assert page.token.echoMode() == page.token.EchoMode.Password  # shown masked
    assert stat.S_IMODE(key_file.stat().st_mode) == 0o600
    listening = socket.create_connection(("127.0.0.1", port), timeout=2)  # loopback only
    listening.close()

    ids = scripted.reply("Served by the window's model.", analysis="Short.")
    answer = client(port, key).responses.create(model=model_dir.name, input="Hi")
    assert answer.output_text == "Served by the window's model."
    assert len(threads) == len(ids)
    engine_thread = window.engine.worker.thread()
    assert all(t is engine_thread for t in threads), "sampled off the window's engine thread"
    assert engine_thread is not QThread.currentThread()


def test_a_window_turn_waits_for_a_server_request_and_never_overlaps_it(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, model_dir: Path
) -> None:
    window, scripted = scripted_window(make_window, tok)
    server = server_of(window)
    port = free_port()
    window.settings.update(server_enabled=True, server_port=port)
    served_ids = scripted.reply("From the server.")
    scripted.reply("From the window.")
    gate = scripted.hold_at(3)  # the request is mid-answer when the window sends
    ask = client(port, server.key())
    request, out = in_thread(
        lambda: ask.chat.completions.create(
            model=model_dir.name, messages=[{"role": "user", "content": "Server?"}]
        )
    )
    assert scripted.reached[3].wait(WAIT_S)
    window.composer.set_text("Window?")
    qtbot.keyClick(window.composer.input, Qt.Key.Key_Return)
    assert window.engine.busy  # sent; it waits behind the request on the engine thread
    qtbot.wait(300)
    assert scripted.sampler.calls == 3, "the window's turn ran while a request was answered"
    with qtbot.waitSignal(window.controller.turn_completed, timeout=TURN_TIMEOUT_MS) as done:
        gate.set()
    request.join(WAIT_S)
    assert out[0].choices[0].message.content == "From the server."
    assert done.args[0].error is None
    answer = window.view.messages()[-1]
    assert isinstance(answer, AssistantMessageWidget)
    assert answer.answer_text() == "From the window."
    # The window's turn sampled only once the request's last token was taken.
    assert len(scripted.sessions) == 1 and scripted.sampler.calls > len(served_ids)


def test_a_wrong_key_is_refused_with_401(
    make_window: MakeWindow, tok: HarmonyTokenizer, model_dir: Path
) -> None:
    window, _ = scripted_window(make_window, tok)
    port = free_port()
    window.settings.update(server_enabled=True, server_port=port)
    with pytest.raises(openai.AuthenticationError) as refused_:
        client(port, "osk-not-the-key").models.list()
    assert refused_.value.status_code == 401
    models = client(port, server_of(window).key()).models.list()
    assert [m.id for m in models.data] == [model_dir.name]


def test_a_port_in_use_is_named_and_another_can_be_chosen(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, model_dir: Path
) -> None:
    window, _ = scripted_window(make_window, tok)
    page = open_server_settings(window)
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = int(taken.getsockname()[1])
        switch_on(qtbot, page, port)
        assert page.status.text() == f"Port {port} is in use: choose another."
        assert not server_of(window).running
        other = free_port()
        page.port.setValue(other)
    assert page.status.text() == f"Serving {model_dir.name} at http://127.0.0.1:{other}/v1"
    assert server_of(window).running


def test_it_says_to_load_a_model_first_and_serves_once_one_is_loaded(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, model_dir: Path
) -> None:
    window, _ = scripted_window(make_window, tok, load=False)
    port = free_port()
    window.settings.update(server_enabled=True, server_port=port)
    server = server_of(window)
    assert server.status.startswith("Load a model first")
    assert refused(port)
    window.load_model(str(model_dir))
    qtbot.waitUntil(lambda: server.running, timeout=LOAD_TIMEOUT_MS)
    assert server.status == f"Serving {model_dir.name} at http://127.0.0.1:{port}/v1"


def test_switching_it_off_stops_it_within_a_second_even_mid_answer(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, model_dir: Path
) -> None:
    window, scripted = scripted_window(make_window, tok)
    page = open_server_settings(window)
    port = free_port()
    switch_on(qtbot, page, port)
    scripted.reply("word " * 30)
    gate = scripted.hold_at(4)
    stream = client(port, server_of(window).key())
    request, out = in_thread(
        lambda: list(stream.responses.create(model=model_dir.name, input="Go", stream=True))
    )
    assert scripted.reached[4].wait(WAIT_S)
    started = time.monotonic()
    qtbot.mouseClick(page.enabled, Qt.MouseButton.LeftButton)
    took = time.monotonic() - started
    gate.set()
    assert took < 1.0, f"stopping took {took:.2f} s"
    assert not server_of(window).running
    assert refused(port)
    assert page.status.text().startswith("Off")
    request.join(WAIT_S)
    assert isinstance(out[0], openai.APIConnectionError)  # the stream was cut, not completed
    qtbot.waitUntil(lambda: server_of(window).runner.outstanding == 0, timeout=TURN_TIMEOUT_MS)
    assert scripted.sampler.discard_remaining(), "the cancelled answer ran to its end"


def test_quitting_stops_the_server(
    qtbot: QtBot,
    make_window: MakeWindow,
    tok: HarmonyTokenizer,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    quitting: list[Callable[[], None]] = []

    class App:
        """Stands in for the QApplication build() hooks its clean-up to (aboutToQuit)."""

        class aboutToQuit:  # the Qt signal's name
            connect = staticmethod(quitting.append)

        @staticmethod
        def instance() -> type[App]:
            return App

    with monkeypatch.context() as patch:
        patch.setattr(app.launch, "QApplication", App)
        window, _ = scripted_window(make_window, tok)
    port = free_port()
    window.settings.update(server_enabled=True, server_port=port)
    assert server_of(window).running and not refused(port)
    started = time.monotonic()
    (release,) = quitting
    release()
    assert time.monotonic() - started < 2.0
    assert not server_of(window).running
    assert refused(port)
    monkeypatch.setattr(window.store, "close", lambda: None)  # release() closed it already


def test_loading_another_model_drops_the_served_session_and_its_model(
    qtbot: QtBot, make_window: MakeWindow, tok: HarmonyTokenizer, model_dir: Path
) -> None:
    window, scripted = scripted_window(make_window, tok)
    port = free_port()
    window.settings.update(server_enabled=True, server_port=port)
    ask = client(port, server_of(window).key())
    scripted.reply("One.")
    assert ask.responses.create(model=model_dir.name, input="1").output_text == "One."
    served = window.engine.worker.served
    assert served._answerer is not None and served._answerer.session is not None
    window.load_model(str(model_dir))  # e.g. another memory profile: the old model must go
    qtbot.waitUntil(lambda: window.engine.model is not None, timeout=LOAD_TIMEOUT_MS)
    assert served._answerer is None, "the served session keeps the old model alive"
    scripted.reply("Two.")
    assert ask.responses.create(model=model_dir.name, input="2").output_text == "Two."


def _remote_loader(path: str, profile: str, progress: Any) -> Any:
    info = RemoteModelInfo(
        path="gpt-oss-120b", context_tokens=8192, profile="remote", host="studio.local"
    )
    return object(), EstimatingTokenizer(), info


def test_with_answers_from_another_server_it_says_so_and_serves_nothing(
    qtbot: QtBot, make_window: MakeWindow
) -> None:
    """Settings › Model › Use a server: no model on this Mac to serve, and the status says why
    rather than "Serving …" while every request fails."""
    window = make_window(loader=_remote_loader, model=Path("/models/gpt-oss-120b"))
    qtbot.waitUntil(lambda: window.engine.model is not None, timeout=LOAD_TIMEOUT_MS)
    port = free_port()
    window.settings.update(server_enabled=True, server_port=port)
    server = server_of(window)
    assert server.status.startswith("Not serving: answers come from another server")
    assert not server.running and refused(port)
