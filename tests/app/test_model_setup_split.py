"""The setup's ways out for a model that fits this Mac in no profile: "Use a Server…" opens
Settings › Model, and "Split Across Macs" shows the planner's numbers and the mlx.launch recipe."""

from __future__ import annotations

import json
import shlex
import struct
from collections.abc import Iterator
from pathlib import Path

import pytest
from PySide6.QtCore import QPoint, QRect, Qt
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QAbstractButton,
    QApplication,
    QLineEdit,
    QPlainTextEdit,
    QWidget,
)
from pytestqt.qtbot import QtBot

import app.model_setup
from app.model_setup import ModelSetupDialog
from engine import MachineBudget, ModelArgs
from engine.memory.macs import mac_budget
from engine.memory.planner import GiB, recommend_split
from engine.testing.synthetic import GPT_OSS_120B, tensor_specs, tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
from tests.app.conftest import MakeWindow

# The offscreen platform's own notices when a window is shown or raised; nothing of ours.
pytestmark = pytest.mark.qt_log_ignore(
    "This plugin does not support propagateSizeHints", "This plugin does not support raise"
)

MAC_16GB = MachineBudget(16 * 2**30, 16 * 2**30, int(10.67 * GiB), reserve=0)
# What a 1280x800 screen leaves a window below the menu bar and its own title bar.
SCREEN_HEIGHT = 800 - 25 - 28


def write_120b_checkpoint(folder: Path) -> Path:
    """gpt-oss-120b's config.json, a tokenizer, and one safetensors file with the real header
    of every 120b tensor whose 65 GB of data is a hole in the file (zeros, no disk used): what
    the setup reads of a model folder (config, file names, tokenizer) is all real."""
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(GPT_OSS_120B))
    header: dict[str, object] = {}
    offset = 0
    for spec in tensor_specs(GPT_OSS_120B):
        header[spec.name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with (folder / "model.safetensors").open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        f.truncate(8 + len(raw) + offset)
    write_synthetic_tokenizer(folder)
    return folder


@pytest.fixture(scope="module")
def big_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_120b_checkpoint(tmp_path_factory.mktemp("models") / "gpt-oss-120b")


@pytest.fixture
def dialog(qtbot: QtBot, tmp_path: Path) -> Iterator[ModelSetupDialog]:
    made = ModelSetupDialog(download_dir=tmp_path / "dl", token=False, budget=MAC_16GB)
    qtbot.addWidget(made)
    made.resize(640, 480)
    made.show()
    yield made
    made.reject()


def click(qtbot: QtBot, button: QAbstractButton) -> None:
    assert button.isVisible() and button.isEnabled(), button.text()
    qtbot.mouseClick(button, Qt.MouseButton.LeftButton)


def words(n: int) -> str:
    return ["", "one", "two", "three", "four", "five", "six", "seven", "eight"][n]


def test_120b_on_a_16gb_mac_offers_the_split_with_the_planners_numbers(
    qtbot: QtBot, dialog: ModelSetupDialog, big_model: Path
) -> None:
    assert not dialog.select_model_folder(big_model)
    assert dialog.model_status_label.text().startswith("This model does not fit")
    ways = dialog.ways_out
    assert ways.isVisible() and ways.server_button.isVisible()
    assert not dialog.split_panel.isVisible()
    click(qtbot, ways.split_button)
    assert dialog.split_panel.isVisible()

    args = ModelArgs.from_model_dir(big_model)
    here = recommend_split(args, MAC_16GB, "bfloat16", 8192)
    assert here.machines > 1
    answer = dialog.split_panel.answer_label.text()
    first, rest = here.plans[0].total / GiB, here.plans[1].total / GiB
    assert answer.startswith(f"{words(here.machines).capitalize()} Macs like this one (")
    assert f"{first:.1f} GiB on the first Mac, {rest:.1f} GiB on each of the other" in answer
    # The other sizes: for each group size, the smallest Mac that the planner says suffices.
    groups = {recommend_split(args, mac_budget(gb)).machines: gb for gb in (48, 32, 16)}
    listed = [f"{words(n)} {gb} GB" for n, gb in sorted(groups.items(), reverse=True)]
    assert f"{', '.join(listed[:-1])} or {listed[-1]} Macs" in answer
    alone = next(gb for gb in (64, 96, 128) if recommend_split(args, mac_budget(gb)).machines == 1)
    assert answer.endswith(f"one {alone} GB Mac runs it alone.")

    hosts = json.loads(dialog.split_panel.hosts_edit.toPlainText())
    assert len(hosts) == here.machines
    assert hosts[0] == {"ssh": "MAC_1_NAME", "ips": ["MAC_1_IP"]}
    assert dialog.split_panel.command == (
        "mlx.launch --hostfile hosts.json --backend ring -- -m server "
        f"--model {shlex.quote(str(big_model))} --distributed --host 0.0.0.0"
    )
    server_line = dialog.split_panel.server_label.text()
    assert "Settings › Model › Use a server at the first Mac" in server_line
    selectable = Qt.TextInteractionFlag.TextSelectableByMouse
    for label in (dialog.split_panel.answer_label, dialog.split_panel.server_label):
        assert label.textInteractionFlags() & selectable


def test_the_split_panel_fits_a_laptop_screen_and_every_control_is_named(
    qtbot: QtBot, dialog: ModelSetupDialog, big_model: Path
) -> None:
    dialog.select_model_folder(big_model)
    click(qtbot, dialog.details_button)
    click(qtbot, dialog.ways_out.split_button)
    assert not dialog.fit_details.isVisible()  # one tall pane at a time
    QApplication.processEvents()
    assert dialog.height() <= SCREEN_HEIGHT, dialog.height()
    layout = dialog.layout()
    assert layout is not None and layout.totalMinimumSize().height() <= dialog.height()
    panel = dialog.split_panel
    for part in (panel.hosts_edit, panel.command_edit, panel.copy_button, panel.server_label):
        box = QRect(part.mapTo(dialog, QPoint(0, 0)), part.size())
        assert dialog.rect().contains(box), part.accessibleName()
    # the hosts list is whole: no scrolling needed to read it
    assert panel.hosts_edit.verticalScrollBar().maximum() == 0
    kinds: tuple[type[QWidget], ...] = (QAbstractButton, QLineEdit, QPlainTextEdit)
    controls = [w for kind in kinds for w in dialog.findChildren(kind)]
    assert [w for w in controls if not w.accessibleName()] == []


def test_copy_puts_the_command_on_the_clipboard(
    qtbot: QtBot, dialog: ModelSetupDialog, big_model: Path
) -> None:
    QGuiApplication.clipboard().setText("something else")
    dialog.select_model_folder(big_model)
    click(qtbot, dialog.ways_out.split_button)
    click(qtbot, dialog.split_panel.copy_button)
    copied = QGuiApplication.clipboard().text()
    assert copied == dialog.split_panel.command
    assert copied.startswith("mlx.launch --hostfile hosts.json") and "--distributed" in copied
    assert dialog.split_panel.copy_button.text() == "Copied"


def test_a_model_that_fits_shows_no_ways_out(
    qtbot: QtBot, dialog: ModelSetupDialog, tmp_path: Path, big_model: Path
) -> None:
    tiny = write_checkpoint(tmp_path / "tiny", tiny_config())
    write_synthetic_tokenizer(tiny)
    dialog.select_model_folder(big_model)
    click(qtbot, dialog.ways_out.split_button)
    assert dialog.select_model_folder(tiny)  # the same dialog, now a model that fits
    assert not dialog.ways_out.isVisible() and not dialog.split_panel.isVisible()
    assert dialog.use_button.isEnabled()


def test_use_a_server_opens_settings_on_the_model_page(
    qtbot: QtBot, make_window: MakeWindow, big_model: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(app.model_setup, "machine_budget", lambda: MAC_16GB)
    window = make_window(load=False)
    window.choose_model()
    (setup,) = [
        w
        for w in QApplication.topLevelWidgets()
        if isinstance(w, ModelSetupDialog) and w.isVisible()
    ]
    assert not setup.select_model_folder(big_model)
    with qtbot.assertNotEmitted(setup.model_chosen):
        click(qtbot, setup.ways_out.server_button)
    assert not setup.isVisible()
    settings = window._settings_dialog
    assert settings is not None and settings.isVisible()
    assert settings.pages.tabText(settings.pages.currentIndex()) == "Model"
    assert settings.remote.isVisible()  # Settings › Model › Use a server
    assert window.settings.settings.model_dir == ""
    settings.close()
