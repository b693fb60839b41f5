"""Fixtures for the app tests: our QApplication subclass, a fresh message bridge per test, the
tiny chat-capable checkpoint, and `make_window`, which builds the real window, engine thread and
history on a temporary data folder (and takes them down again)."""

from __future__ import annotations

import argparse
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pytest
from pytestqt.qtbot import QtBot

import app.messages
from app.application import Application
from app.engine_requests import Loader, SessionFactory
from app.engine_worker import load_engine
from app.launch import build
from app.main_window import MainWindow
from app.messages import MessageBridge
from engine import HarmonyTokenizer
from tests.conftest import CheckpointFactory
from tests.engine.chat.fixtures import chat_model_dir

if TYPE_CHECKING:
    from tests.server.conftest import Served

LOAD_TIMEOUT_MS = 20_000
TURN_TIMEOUT_MS = 30_000

MakeWindow = Callable[..., MainWindow]


@pytest.fixture(scope="session")
def qapp_cls() -> type[Application]:
    return Application


@pytest.fixture(autouse=True)
def fresh_bridge(monkeypatch: pytest.MonkeyPatch) -> MessageBridge:
    """Messages of one test never show up in the next one's window."""
    bridge = MessageBridge()
    monkeypatch.setattr(app.messages, "_bridge", bridge)
    return bridge


@pytest.fixture(scope="session")
def model_dir(make_checkpoint: CheckpointFactory) -> Path:
    return chat_model_dir(make_checkpoint)


@pytest.fixture(scope="session")
def tok(model_dir: Path) -> HarmonyTokenizer:
    return HarmonyTokenizer.from_model_dir(model_dir)


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    return tmp_path / "data"


@pytest.fixture
def make_window(qtbot: QtBot, data_dir: Path, model_dir: Path) -> Iterator[MakeWindow]:
    """make_window(session_factory=..., loader=..., load=True) -> a shown MainWindow whose model
    has loaded (unless load=False). Several calls on the same data folder model a restart."""
    built: list[MainWindow] = []

    def make(
        *,
        session_factory: SessionFactory | None = None,
        loader: Loader = load_engine,
        load: bool = True,
        model: Path | None = None,
        **args: Any,
    ) -> MainWindow:
        namespace = argparse.Namespace(
            model=None, data_dir=str(data_dir), profile="full", files=[], **args
        )
        window = build(namespace, loader=loader, session_factory=session_factory)
        built.append(window)
        qtbot.addWidget(window)
        window.show()
        if load:
            window.load_model(str(model or model_dir))
            qtbot.waitUntil(lambda: window.engine.model is not None, timeout=LOAD_TIMEOUT_MS)
        return window

    yield make
    for window in built:
        close(window)


def close(window: MainWindow) -> None:
    """What quitting does: stop the engine thread, close the history."""
    if window.isVisible():
        window.close()
    window.engine.shutdown()
    window.store.close()


@pytest.fixture(scope="module")
def own_server(
    make_checkpoint: CheckpointFactory, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Served]:
    """This project's own server (server/) on loopback with the tiny chat checkpoint and a
    scripted model, one per test module: the remote backend's tests talk to it."""
    from tests.server.conftest import serve  # FastAPI and uvicorn: only for the tests that ask

    model_dir = chat_model_dir(make_checkpoint)
    tok = HarmonyTokenizer.from_model_dir(model_dir)
    yield from serve(model_dir, tok, tmp_path_factory.mktemp("own-server") / "responses.sqlite3")
