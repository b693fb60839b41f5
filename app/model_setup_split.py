"""What the setup offers when a model fits this Mac in no profile: use a server that runs it, or
split it across several Macs (engine.distributed), with the planner's numbers and the recipe.

The numbers come from engine.memory (recommend_split for Macs like this one, smallest_groups for
the other Mac sizes); the recipe is the README's "Bigger models" one, for this model's folder.
"""

from __future__ import annotations

import json
import shlex
from pathlib import Path

from PySide6.QtCore import Signal, Slot
from PySide6.QtGui import QFontDatabase, QFontMetrics, QGuiApplication
from PySide6.QtWidgets import (
    QFrame,
    QHBoxLayout,
    QPlainTextEdit,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from app.model_setup_widgets import SELECTABLE, label, named
from engine import (
    SETUP_CONTEXT,
    GiB,
    MachineBudget,
    ModelArgs,
    SplitVerdict,
    rank_shares,
    recommend_split,
    smallest_groups,
)

SERVER_PORT = 8000  # oss-desk-serve's default port
NUMBERS = {1: "one", 2: "two", 3: "three", 4: "four", 5: "five", 6: "six", 7: "seven", 8: "eight"}


def launch_command(model_dir: Path) -> str:
    """The command that starts the split server from the first Mac (mlx.launch starts the
    others over ssh; each runs the same command on its own slice)."""
    model = shlex.quote(str(model_dir))
    return (
        "mlx.launch --hostfile hosts.json --backend ring -- "
        f"-m server --model {model} --distributed --host 0.0.0.0"
    )


def hosts_example(machines: int) -> str:
    """mlx.launch's hostfile for `machines` Macs, one per line, with placeholders to replace."""
    rows = [
        json.dumps({"ssh": f"MAC_{i}_NAME", "ips": [f"MAC_{i}_IP"]}) for i in range(1, machines + 1)
    ]
    return "[\n" + ",\n".join(f"  {row}" for row in rows) + "\n]"


def split_dtype(budget: MachineBudget) -> str:
    """As the engine loads (and describe_fit plans): bfloat16 on a GPU, float32 on the CPU."""
    return "bfloat16" if budget.gpu_working_set else "float32"


def _count(n: int) -> str:
    return NUMBERS.get(n, str(n))


def planner_answer(args: ModelArgs, budget: MachineBudget, here: SplitVerdict) -> str:
    """The planner's answer in two sentences: Macs like this one, then Macs of other sizes."""
    usable = f"{budget.usable / GiB:.1f} GiB"
    if here.machines:
        first = (
            f"{_count(here.machines).capitalize()} Macs like this one ({usable} for the model "
            f"each) hold it together: {rank_shares(here.plans)}, at {SETUP_CONTEXT:,} tokens."
        )
    else:
        first = f"Even eight Macs like this one ({usable} for the model each) cannot hold it."
    groups = smallest_groups(args, SETUP_CONTEXT)
    split = [f"{_count(n)} {gb} GB" for gb, n in groups if n > 1]
    alone = [gb for gb, n in groups if n == 1]
    options = []
    if split:
        listed = f"{', '.join(split[:-1])} or {split[-1]}" if len(split) > 1 else split[0]
        options.append(f"{listed} Macs")
    if alone:
        options.append(f"one {alone[0]} GB Mac runs it alone")
    if not options:
        return f"{first} No group of up to eight Macs holds it: use a server."
    return f"{first} Any of these work too: {'; '.join(options)}."


def _height_for_lines(edit: QPlainTextEdit, lines: int) -> int:
    """Tall enough for `lines` lines with no scrolling: QPlainTextEdit scrolls unless the last
    line has room to spare, hence half a line more than the lines, margins and frame."""
    line = QFontMetrics(edit.font()).lineSpacing()
    margins = 2 * (edit.frameWidth() + int(edit.document().documentMargin()))
    return line * lines + line // 2 + margins


class SplitPanel(QFrame):
    """The recipe for one model: the planner's numbers, hosts.json, the command and Copy."""

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setProperty("role", "card")
        mono = QFontDatabase.systemFont(QFontDatabase.SystemFont.FixedFont)
        box = QVBoxLayout(self)
        self.answer_label = label()
        self.answer_label.setTextInteractionFlags(SELECTABLE)
        named(self.answer_label, "How many Macs it needs")
        box.addWidget(self.answer_label)
        box.addWidget(
            label(
                "1. On the first Mac, save the list of Macs as hosts.json: each one's name for "
                "ssh and its address on the network that joins them (Ethernet or Thunderbolt)."
            )
        )
        self.hosts_edit = QPlainTextEdit()
        self.hosts_edit.setReadOnly(True)
        self.hosts_edit.setFont(mono)
        self.hosts_edit.setLineWrapMode(QPlainTextEdit.LineWrapMode.NoWrap)
        named(self.hosts_edit, "hosts.json example", "Replace MAC_n_NAME and MAC_n_IP.")
        box.addWidget(self.hosts_edit)
        box.addWidget(
            label(
                "2. With OSS Desk and the model in the same folder on every Mac, run this on "
                "the first one:"
            )
        )
        row = QHBoxLayout()
        self.command_edit = QPlainTextEdit()
        self.command_edit.setReadOnly(True)
        self.command_edit.setFont(mono)
        self.command_edit.setFixedHeight(_height_for_lines(self.command_edit, 3))
        named(self.command_edit, "Command that starts the split server")
        self.copy_button = QPushButton("Copy")
        named(self.copy_button, "Copy the command", "Puts the command on the clipboard.")
        self.copy_button.clicked.connect(self.copy_command)
        row.addWidget(self.command_edit, 1)
        row.addWidget(self.copy_button)
        box.addLayout(row)
        self.server_label = label()
        self.server_label.setTextInteractionFlags(SELECTABLE)
        named(self.server_label, "Then use the first Mac as a server")
        box.addWidget(self.server_label)

    def show_plan(self, model_dir: Path, args: ModelArgs, budget: MachineBudget) -> SplitVerdict:
        """Fills the panel for `args` on Macs like `budget`; returns the planner's verdict."""
        here = recommend_split(args, budget, split_dtype(budget), SETUP_CONTEXT)
        self.answer_label.setText(planner_answer(args, budget, here))
        hosts = hosts_example(here.machines or 2)
        self.hosts_edit.setPlainText(hosts)
        lines = hosts.count("\n") + 1
        self.hosts_edit.setFixedHeight(_height_for_lines(self.hosts_edit, lines))
        self.command_edit.setPlainText(launch_command(model_dir))
        self.server_label.setText(
            "3. Then point Settings › Model › Use a server at the first Mac: "
            f"http://MAC_1_NAME:{SERVER_PORT}/v1, with the token the server prints."
        )
        return here

    @property
    def command(self) -> str:
        return self.command_edit.toPlainText()

    @Slot()
    def copy_command(self) -> None:
        QGuiApplication.clipboard().setText(self.command)
        self.copy_button.setText("Copied")


class WaysOut(QWidget):
    """ "Use a Server…" and "Split Across Macs" under a model that does not fit this Mac."""

    server_requested = Signal()
    panel_toggled = Signal(bool)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        box = QVBoxLayout(self)
        box.setContentsMargins(0, 0, 0, 0)
        self.intro_label = label(
            "It can still run for you: on a bigger machine that serves it, or split across "
            "several Macs."
        )
        box.addWidget(self.intro_label)
        row = QHBoxLayout()
        self.server_button = QPushButton("Use a Server…")
        named(
            self.server_button,
            "Use a server",
            "Opens Settings › Model, where you enter the address of a machine that serves it.",
        )
        self.server_button.clicked.connect(self.server_requested)
        self.split_button = QPushButton("Split Across Macs")
        self.split_button.setCheckable(True)
        named(self.split_button, "Split across Macs", "Shows how to run it on several Macs.")
        self.split_button.toggled.connect(self._toggle_panel)
        row.addWidget(self.server_button)
        row.addWidget(self.split_button)
        row.addStretch(1)
        box.addLayout(row)
        self.panel = SplitPanel()
        self.panel.hide()
        box.addWidget(self.panel)

    def show_for(self, model_dir: Path, budget: MachineBudget) -> None:
        """Offers both ways out for the model in `model_dir` (its config.json is read again)."""
        self.panel.show_plan(model_dir, ModelArgs.from_model_dir(model_dir), budget)
        self.panel.copy_button.setText("Copy")
        self.split_button.setChecked(False)
        self.show()

    @Slot(bool)
    def _toggle_panel(self, shown: bool) -> None:
        self.panel.setVisible(shown)
        self.split_button.setAccessibleName(
            "Hide the split across Macs" if shown else "Split across Macs"
        )
        self.panel_toggled.emit(shown)
