"""The first-run dialog against a loopback Hub: download, pause and resume, failures, and
choosing a model folder that is already on disk."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import NamedTuple

import pytest
from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QAbstractButton,
    QAbstractItemView,
    QFileDialog,
    QLineEdit,
    QPlainTextEdit,
    QProgressBar,
    QWidget,
)
from pytestqt.qtbot import QtBot

import app.model_setup
from app.download_worker import describe_progress, download_dir_in, format_bytes, format_eta
from app.model_setup import ModelSetupDialog
from engine import DownloadProgress, MachineBudget, RetryPolicy
from engine.testing.fake_hub import FakeHub
from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer

# The offscreen platform's own notice when a window is shown; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore("This plugin does not support propagateSizeHints")

GiB = 2**30
SHARD_1 = "model-00001-of-00002.safetensors"
CHUNK = 16 << 10  # several reads per tiny shard, so a pause lands inside a file
FAST = RetryPolicy(max_retries=2, wait_s=0.01, stall_timeout_s=2.0, connect_timeout_s=2.0)
MAC_16GB = MachineBudget(16 * 10**9, 16 * 10**9, int(10.67 * GiB), reserve=0)
TIMEOUT_MS = 20_000

MakeDialog = Callable[..., ModelSetupDialog]


class Usage(NamedTuple):
    total: int
    used: int
    free: int


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "models" / "gpt-oss-20b"


@pytest.fixture
def make_dialog(qtbot: QtBot, hub: FakeHub, dest: Path) -> Iterator[MakeDialog]:
    made: list[ModelSetupDialog] = []

    def make(**options: object) -> ModelSetupDialog:
        kwargs: dict[str, object] = {
            "endpoint": hub.endpoint,
            "download_dir": dest,
            "token": False,  # never a token the developer's machine has stored
            "budget": MAC_16GB,
            "retry": FAST,
            "chunk_bytes": CHUNK,
        }
        dialog = ModelSetupDialog(**(kwargs | options))  # type: ignore[arg-type]
        qtbot.addWidget(dialog)
        dialog.show()
        made.append(dialog)
        return dialog

    yield make
    for dialog in made:
        dialog.reject()  # stops the download thread


def click(qtbot: QtBot, button: QAbstractButton) -> None:
    assert button.isVisible() and button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def test_download_shows_progress_and_chooses_the_folder(
    qtbot: QtBot, make_dialog: MakeDialog, hub: FakeHub, dest: Path, tiny_repo: Path
) -> None:
    dialog = make_dialog()
    hub.bytes_per_second = 400_000  # about 1.5 s for the whole tiny repo
    assert dialog.download_button.text() == "Download"
    with qtbot.waitSignal(dialog.model_chosen, timeout=TIMEOUT_MS) as chosen:
        click(qtbot, dialog.download_button)
        assert dialog.pause_button.isVisible() and not dialog.download_button.isVisible()
        qtbot.waitUntil(lambda: dialog.progress_bar.value() >= 100, timeout=TIMEOUT_MS)
        assert dialog.progress_bar.value() < 1000
        status = dialog.status_label.text()
        assert " of 5" in status and "B/s · " in status and status.endswith(" left"), status
        assert "free on this disk" in dialog.space_label.text()
    assert chosen.args == [str(dest)]
    assert dialog.result() == ModelSetupDialog.DialogCode.Accepted
    assert dialog.progress_bar.value() == 1000
    assert (dest / SHARD_1).read_bytes() == (tiny_repo / SHARD_1).read_bytes()
    assert not (dest / "original").exists()


def test_pause_keeps_the_partial_file_and_resume_continues_it(
    qtbot: QtBot, make_dialog: MakeDialog, hub: FakeHub, dest: Path
) -> None:
    dialog = make_dialog()
    hub.bytes_per_second = 150_000
    click(qtbot, dialog.download_button)
    part_dir = dest / ".oss-desk" / "partial"
    qtbot.waitUntil(
        lambda: any(p.stat().st_size >= 3 * CHUNK for p in part_dir.glob(f"{SHARD_1}.*.part")),
        timeout=TIMEOUT_MS,
    )
    click(qtbot, dialog.pause_button)
    qtbot.waitUntil(lambda: dialog.download_button.isVisible(), timeout=TIMEOUT_MS)
    assert dialog.download_button.text() == "Resume"
    assert dialog.status_label.text().startswith("Paused at ")
    [part] = part_dir.glob(f"{SHARD_1}.*.part")
    kept = part.stat().st_size
    assert 0 < kept < hub.files[SHARD_1].size
    assert not (dest / SHARD_1).exists()

    hub.reset()
    with qtbot.waitSignal(dialog.model_chosen, timeout=TIMEOUT_MS):
        click(qtbot, dialog.download_button)
    [resumed] = hub.file_gets(SHARD_1)
    assert resumed.range == f"bytes={kept}-"
    assert (dest / SHARD_1).stat().st_size == hub.files[SHARD_1].size


def test_a_checksum_failure_says_so_and_the_retry_fetches_only_that_file(
    qtbot: QtBot, make_dialog: MakeDialog, hub: FakeHub, dest: Path
) -> None:
    dialog = make_dialog()
    hub.corrupt(SHARD_1)
    click(qtbot, dialog.download_button)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=TIMEOUT_MS)
    assert "checksum" in dialog.error_label.text() and SHARD_1 in dialog.error_label.text()
    assert dialog.download_button.text() == "Download Again"
    assert not (dest / SHARD_1).exists()

    hub.reset()
    with qtbot.waitSignal(dialog.model_chosen, timeout=TIMEOUT_MS):
        click(qtbot, dialog.download_button)
    assert {r.file for r in hub.requests if r.body_bytes and r.file} == {SHARD_1}
    assert not dialog.error_label.isVisible()


def test_too_little_disk_space_refuses_before_any_byte_moves(
    qtbot: QtBot, make_dialog: MakeDialog, hub: FakeHub, dest: Path
) -> None:
    dialog = make_dialog(disk_usage=lambda _path: Usage(10**12, 10**12 - 50_000_000, 50_000_000))
    assert dialog.space_label.text() == "50.0 MB free on this disk."
    click(qtbot, dialog.download_button)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=TIMEOUT_MS)
    assert "Not enough free space" in dialog.error_label.text()
    assert "another disk" in dialog.error_label.text()
    assert hub.served_bytes() == 0
    assert not dest.exists()
    assert dialog.dest_edit.isEnabled() and dialog.choose_dest_button.isEnabled()


def test_a_gated_repo_asks_for_an_access_token(
    qtbot: QtBot, make_dialog: MakeDialog, hub: FakeHub
) -> None:
    dialog = make_dialog()
    assert not dialog.token_row.isVisible()
    hub.gate()
    click(qtbot, dialog.download_button)
    qtbot.waitUntil(lambda: dialog.error_label.isVisible(), timeout=TIMEOUT_MS)
    assert "access token" in dialog.error_label.text()
    assert dialog.token_row.isVisible()
    assert dialog.download_button.text() == "Sign In and Retry"


def synthetic_model(folder: Path) -> Path:
    write_checkpoint(folder, tiny_config(), num_shards=2)
    write_synthetic_tokenizer(folder)
    return folder


def choose_folder(monkeypatch: pytest.MonkeyPatch, folder: Path) -> None:
    monkeypatch.setattr(QFileDialog, "getExistingDirectory", lambda *_args: str(folder))


def test_choosing_a_model_folder_shows_the_fit_and_uses_it(
    qtbot: QtBot, make_dialog: MakeDialog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    folder = synthetic_model(tmp_path / "my-model")
    dialog = make_dialog()
    assert not dialog.use_button.isEnabled()
    choose_folder(monkeypatch, folder)
    click(qtbot, dialog.choose_model_button)
    assert dialog.model_status_label.text().startswith("Fits this Mac with the full precision")
    assert dialog.model_status_label.property("role") == "success"
    assert not dialog.fit_details.isVisible()
    click(qtbot, dialog.details_button)
    assert dialog.fit_details.isVisible()
    assert dialog.details_button.accessibleName() == "Hide memory details"
    assert "total" in dialog.fit_details.toPlainText()
    assert "10.7 GiB" in dialog.fit_details.toPlainText()  # the simulated Mac's budget
    with qtbot.waitSignal(dialog.model_chosen, timeout=1000) as chosen:
        click(qtbot, dialog.use_button)
    assert chosen.args == [str(folder)]


def test_a_folder_without_a_model_is_refused_clearly(
    qtbot: QtBot, make_dialog: MakeDialog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    dialog = make_dialog()
    empty = tmp_path / "Documents"
    empty.mkdir()
    choose_folder(monkeypatch, empty)
    with qtbot.assertNotEmitted(dialog.model_chosen):
        click(qtbot, dialog.choose_model_button)
    assert "not a model folder" in dialog.model_status_label.text()
    assert dialog.model_status_label.property("role") == "error"
    assert not dialog.use_button.isEnabled() and not dialog.details_button.isVisible()

    folder = synthetic_model(tmp_path / "half")
    (folder / SHARD_1).unlink()
    assert not dialog.select_model_folder(folder)
    assert f"{SHARD_1} is missing" in dialog.model_status_label.text()


def test_every_control_has_an_accessible_name(make_dialog: MakeDialog) -> None:
    dialog = make_dialog()
    kinds: tuple[type[QWidget], ...] = (
        QAbstractButton,
        QLineEdit,
        QPlainTextEdit,
        QProgressBar,
        QAbstractItemView,
    )
    controls = [w for kind in kinds for w in dialog.findChildren(kind)]
    assert len(controls) >= 10
    assert [w for w in controls if not w.accessibleName()] == []


def test_a_download_into_a_busy_folder_goes_into_a_subfolder(tmp_path: Path) -> None:
    assert download_dir_in(tmp_path) == tmp_path  # empty: used as it is
    (tmp_path / "notes.txt").write_text("x")
    assert download_dir_in(tmp_path) == tmp_path / "gpt-oss-20b"
    named = tmp_path / "gpt-oss-20b"
    named.mkdir()
    (named / "config.json").write_text("{}")
    assert download_dir_in(named) == named


def test_progress_reads_like_finder() -> None:
    assert format_bytes(950_000) == "950 KB"
    assert format_bytes(13_761_264_768) == "13.8 GB"
    assert format_eta(None) == "estimating time left"
    assert format_eta(30) == "less than a minute left"
    assert format_eta(6 * 60) == "about 6 min left"
    assert format_eta(72 * 60) == "about 1 h 12 min left"
    p = DownloadProgress(SHARD_1, 10, 20, 4_000_000_000, 13_800_000_000, 35e6, 280.0, "downloading")
    assert describe_progress(p) == "4.0 GB of 13.8 GB · 35.0 MB/s · about 5 min left"
    verifying = DownloadProgress(SHARD_1, 5, 20, 1, 2, 0.0, None, "verifying")
    assert describe_progress(verifying).startswith(f"Verifying {SHARD_1} (25%)")


TINY_MAC = MachineBudget(8 * 10**9, 8 * 10**9, 1 << 20, reserve=0)  # 1 MiB: nothing fits


def test_a_model_that_does_not_fit_is_refused_unless_loaded_anyway(
    qtbot: QtBot, make_dialog: MakeDialog, tmp_path: Path
) -> None:
    folder = synthetic_model(tmp_path / "my-model")
    dialog = make_dialog(budget=TINY_MAC)
    assert not dialog.select_model_folder(folder)
    assert dialog.model_status_label.text().startswith(
        "This model does not fit in this Mac's memory. This model needs at least"
    )
    assert dialog.model_status_label.property("role") == "error"
    assert dialog.details_button.isVisible()  # the table says where the memory goes
    assert dialog.load_anyway_box.isVisible() and not dialog.load_anyway_box.isChecked()
    assert not dialog.use_button.isEnabled()
    with qtbot.assertNotEmitted(dialog.model_chosen):
        dialog.use_chosen_model()  # refused even when called directly

    click(qtbot, dialog.load_anyway_box)
    assert dialog.use_button.isEnabled() and dialog.use_button.text() == "Use Anyway"
    assert dialog.use_button.accessibleName() == "Use Anyway"
    click(qtbot, dialog.load_anyway_box)
    assert not dialog.use_button.isEnabled()
    click(qtbot, dialog.load_anyway_box)
    assert dialog.fit_overridden
    with qtbot.waitSignal(dialog.model_chosen, timeout=1000) as chosen:
        click(qtbot, dialog.use_button)
    assert chosen.args == [str(folder)]


def test_choosing_another_folder_forgets_the_override(
    qtbot: QtBot, make_dialog: MakeDialog, tmp_path: Path
) -> None:
    folder = synthetic_model(tmp_path / "my-model")
    dialog = make_dialog(budget=TINY_MAC)
    dialog.select_model_folder(folder)
    click(qtbot, dialog.load_anyway_box)
    assert dialog.use_button.isEnabled()
    dialog._budget = MAC_16GB  # the same dialog, now on a Mac where it fits
    assert dialog.select_model_folder(folder)
    assert not dialog.load_anyway_box.isVisible() and not dialog.load_anyway_box.isChecked()
    assert not dialog.fit_overridden
    assert dialog.use_button.isEnabled() and dialog.use_button.text() == "Use This Model"
    empty = tmp_path / "empty"
    empty.mkdir()
    assert not dialog.select_model_folder(empty)
    assert not dialog.use_button.isEnabled() and not dialog.load_anyway_box.isVisible()


@pytest.mark.timeout(30)  # a config.json FIFO once blocked the UI thread for good
def test_a_hostile_folder_gets_an_answer_not_a_freeze(
    qtbot: QtBot, make_dialog: MakeDialog, tmp_path: Path
) -> None:
    dialog = make_dialog()
    fifo = synthetic_model(tmp_path / "fifo")
    (fifo / "config.json").unlink()
    os.mkfifo(fifo / "config.json")
    billion = synthetic_model(tmp_path / "billion")
    config = json.loads((billion / "config.json").read_text())
    del config["layer_types"]
    (billion / "config.json").write_text(json.dumps(config | {"num_hidden_layers": 1e9}))
    t0 = time.perf_counter()
    assert not dialog.select_model_folder(fifo)
    assert "config.json is a named pipe" in dialog.model_status_label.text()
    assert not dialog.select_model_folder(billion)
    assert "num_hidden_layers is 1000000000.0" in dialog.model_status_label.text()
    assert time.perf_counter() - t0 < 2.0
    assert dialog.model_status_label.property("role") == "error"
    assert not dialog.use_button.isEnabled() and not dialog.load_anyway_box.isVisible()


def test_an_error_in_the_check_is_shown_not_raised(
    qtbot: QtBot, make_dialog: MakeDialog, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The slot is the UI thread's boundary: a bug in the check becomes a message there."""

    def broken(_folder: Path) -> None:
        raise RecursionError("maximum recursion depth exceeded")

    monkeypatch.setattr(app.model_setup, "check_model_folder", broken)
    folder = synthetic_model(tmp_path / "my-model")
    dialog = make_dialog()
    choose_folder(monkeypatch, folder)
    click(qtbot, dialog.choose_model_button)
    text = dialog.model_status_label.text()
    assert text.startswith(f"Checking {folder} failed because of an error in OSS Desk")
    assert "maximum recursion depth" in text and "report it" in text
    assert dialog.model_status_label.property("role") == "error"
    assert not dialog.use_button.isEnabled()
