"""One function per screenshot: each plays its scene in the real window and captures it.

A scene runs in its own process (make_screenshots.py starts one per image), on its own data
folder, so no state leaks from one image to the next.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from pathlib import Path

import shot_text as t
from PySide6.QtCore import Qt
from PySide6.QtTest import QTest
from PySide6.QtWidgets import QLabel
from shot_inputs import Inputs
from shot_window import Stage

from app.attachments import AttachmentTray
from app.message_widget import AssistantMessageWidget
from app.tool_approval import ApprovalDialog
from app.turn_stream import TurnResult
from engine import PythonTool

# A view's numbered line, as the browser shows it ("L12: text").
_LINE = re.compile(r"^L(\d+): (.*)$")
_CURSOR = re.compile(r"^\[(\d+)\] ")
_LINK = re.compile(r"【(\d+)†")


def conversation(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """A question with a PDF, the reasoning expanded, a Markdown answer, and a draft with
    several files of different kinds (one with a long name) waiting in the tray."""
    stage = Stage(theme, inputs.folder / f"data-conversation-{theme}", inputs.model)
    earlier_chats(stage)
    stage.window.controller.new_chat()
    stage.attach([inputs.notes_pdf])
    stage.script(t.ANSWER, analysis=t.REASONING)
    stage.send(t.QUESTION)
    stage.attach(inputs.tray_files())
    stage.window.composer.set_text(t.DRAFT)
    stage.window.view.verticalScrollBar().setValue(0)  # from the question down
    stage.settle(1.0)
    stage.capture(out, grab)
    stage.close()


def search_hit(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """Words typed in the sidebar's search, a hit clicked: its chat scrolled to the matching
    message, the matched words highlighted."""
    stage = Stage(theme, inputs.folder / f"data-search-{theme}", inputs.model)
    earlier_chats(stage)
    stage.window.controller.new_chat()
    for question, answer in t.LONG_CHAT:
        stage.script(answer, analysis="The user asks a follow-up; answer from what I know.")
        stage.send(question)
    stage.window.controller.new_chat()
    stage.script(t.LATEST_CHAT[1], analysis="A short recommendation is enough.")
    stage.send(t.LATEST_CHAT[0])

    sidebar = stage.window.sidebar
    sidebar.search.setFocus()
    QTest.keyClicks(sidebar.search, t.SEARCH_QUERY)
    long_title = t.LONG_CHAT[0][0]

    def hit_row() -> int | None:
        for row in range(sidebar.list.count()):
            label = sidebar.list.itemWidget(sidebar.list.item(row))
            if isinstance(label, QLabel) and long_title[:20] in label.text():
                return row
        return None

    stage.wait_until(lambda: hit_row() is not None, "the search hit")
    item = sidebar.list.item(hit_row() or 0)
    rect = sidebar.list.visualItemRect(item)
    QTest.mouseClick(
        sidebar.list.viewport(),
        Qt.MouseButton.LeftButton,
        Qt.KeyboardModifier.NoModifier,
        rect.center(),
    )
    stage.wait_until(lambda: bool(stage.window.view.highlighted()), "the highlight")
    stage.settle(0.6)  # the scroll lands; the highlight lasts seconds longer
    stage.capture(out, grab)
    stage.close()


def finish_now(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """The model reasoning at length, captured while it streams, Finish Now beside Stop."""
    stage = Stage(theme, inputs.folder / f"data-finish-{theme}", inputs.model)
    earlier_chats(stage)
    stage.window.controller.new_chat()
    stage.script(
        "(not reached: the screenshot is taken while the model reasons)", t.FINISH_REASONING
    )
    turns = stage.type_and_press_return(t.FINISH_QUESTION)
    composer = stage.window.composer

    def reasoning_fits_its_box() -> bool:
        widget = stage.window.view.messages()[-1]
        if not isinstance(widget, AssistantMessageWidget):
            return False
        bar = widget.thinking.body.verticalScrollBar()
        return len(widget.thinking.text) > 900 and bar.maximum() == 0

    # A moment when the growing box shows all of its text: while it grows the app's estimate
    # of its height can hide half of the last line (reported with this script's images).
    stage.wait_until(reasoning_fits_its_box, "the reasoning to stream")
    if not composer.finish_button.isVisible():
        raise RuntimeError("Finish Now is not shown while the model reasons")
    stage.capture(out, grab)
    stage.click(composer.send_button)  # Stop: the screenshot is taken
    stage.wait_until(lambda: bool(turns), "the turn to stop")
    stage.sampler.discard_remaining()
    stage.close()


def cited_answer(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """A 320-page PDF, too long for the context, read with the browser tool: steps in the
    reasoning pane and an answer whose citations are numbered links to the page."""
    stage = Stage(theme, inputs.folder / f"data-cited-{theme}", inputs.model)
    earlier_chats(stage)
    stage.window.controller.new_chat()
    stage.attach([inputs.report])
    tray = stage.window.composer.tray
    assert isinstance(tray, AttachmentTray)
    stage.wait_until(
        lambda: all(c.label.text().endswith("will be searched") for c in tray.chips()),
        "the report to be indexed",
    )
    stage.script_text(
        f"<|channel|>analysis<|message|>{t.CITED_PLAN}<|end|><|start|>assistant"
        + browser_call("search", f'{{"query": "{t.CITED_SEARCH}"}}')
    )
    stage.sampler.refill = ReadingPlan(stage).next_step
    result = stage.send(t.CITED_QUESTION)
    if result.citations is None or any(c.target is None for c in result.citations.citations):
        raise RuntimeError(f"a citation points nowhere: {result.citations}")
    view = stage.window.view
    view.verticalScrollBar().setValue(0)
    stage.settle(1.0)
    stage.capture(out, grab)
    stage.close()


def demo(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """`make demo`: the demo model's own scripted reply (no script of ours), labelled as such."""
    stage = Stage(theme, inputs.folder / f"data-demo-{theme}", inputs.demo_model, scripted=False)
    stage.window.controller.new_chat()
    stage.send("What is a mixture of experts?")
    stage.window.view.verticalScrollBar().setValue(0)
    stage.settle(1.0)
    stage.capture(out, grab)
    stage.close()


def python_approval(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """The model's python code waiting for the user's approval, in a sheet over the chat."""
    stage = python_stage(theme, inputs, "approval")
    dialog = stage.wait_for_dialog()
    stage.settle(1.0)
    stage.capture(out, grab, screen=True)  # the sheet is a window of its own
    stage.sampler.refill = lambda: stage.script_text(  # declined: nothing to answer from
        f"<|start|>assistant<|channel|>final<|message|>{t.PY_DECLINED}<|return|>"
    )
    stage.click(dialog.decline_button)
    stage.wait_until(lambda: bool(stage.turns), "the declined turn to end")
    stage.sampler.discard_remaining()
    stage.close()


def python_answer(theme: str, inputs: Inputs, out: Path, grab: bool) -> None:
    """The approved run: code and output as a step in the reasoning pane, and the answer."""
    stage = python_stage(theme, inputs, "answer")
    stage.click(stage.wait_for_dialog().once_button)
    stage.wait_until(lambda: bool(stage.turns), "the answer")
    if stage.turns[0].status != "complete":
        raise RuntimeError(f"the turn failed: {stage.turns[0]}")
    stage.window.view.verticalScrollBar().setValue(0)
    answer = stage.window.view.messages()[-1]
    assert isinstance(answer, AssistantMessageWidget)
    pane = answer.thinking.body.verticalScrollBar()
    pane.setValue(pane.maximum())  # the end of the code and its whole output
    stage.settle(1.0)
    stage.capture(out, grab)
    stage.close()


class PythonStage(Stage):
    turns: list[TurnResult]

    def wait_for_dialog(self) -> ApprovalDialog:
        found: list[ApprovalDialog] = []

        def shown() -> bool:
            found[:] = [d for d in self.window.findChildren(ApprovalDialog) if d.isVisible()]
            return bool(found)

        self.wait_until(shown, "the approval sheet")
        return found[0]


def python_stage(theme: str, inputs: Inputs, name: str) -> PythonStage:
    """A chat with Python enabled in Settings › Tools whose model calls it for the question."""
    stage = PythonStage(theme, inputs.folder / f"data-python-{name}-{theme}", inputs.model)
    if PythonTool.availability() is not None:
        raise RuntimeError(f"no sandbox here: {PythonTool.availability()}")
    stage.window.settings.update(python_tool_enabled=True)
    earlier_chats(stage)
    stage.window.controller.new_chat()
    stage.script_text(
        f"<|channel|>analysis<|message|>{t.PY_PLAN}<|end|><|start|>assistant"
        f"<|channel|>analysis to=python code<|message|>{t.PY_CODE}<|call|>"
    )

    def answer_from_output() -> None:  # on the engine thread, once the run's output is in
        if stage.sampler.refill is None:
            return
        stage.sampler.refill = None
        output = stage.sessions[-1].messages[-1].text  # "balance  1,234.56" and so on
        lines = (line.partition(" ") for line in output.splitlines())
        printed = {key: value.strip() for key, _, value in lines}
        balance, interest = (float(printed[k].replace(",", "")) for k in ("balance", "interest"))
        answer = t.PY_ANSWER.format(**printed, share=round(100 * interest / balance))
        stage.script_text(
            f"<|start|>assistant<|channel|>analysis<|message|>{t.PY_DONE}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{answer}<|return|>"
        )

    stage.sampler.refill = answer_from_output
    stage.turns = stage.type_and_press_return(t.PY_QUESTION)
    return stage


class ReadingPlan:
    """The model's next move after each browser result, chosen from what the tool showed: open
    the search result that mentions the intake, find the fish figure, then answer citing the
    lines where the facts are. Called on the engine thread when the script runs out."""

    def __init__(self, stage: Stage) -> None:
        self.stage = stage
        self.opened: str | None = None
        self.steps: list[Callable[[str], str]] = [self._open, self._find, self._answer]

    def next_step(self) -> None:
        if not self.steps:
            return  # the script is exhausted: the sampler says so
        shown = self.stage.sessions[-1].messages[-1].text
        self.stage.script_text(self.steps.pop(0)(shown))

    def _open(self, results: str) -> str:
        link = None
        for line in results.splitlines():
            links = _LINK.findall(line)
            link = links[-1] if links else link
            if "intake" in line.lower() and link is not None:
                break
        else:
            raise RuntimeError(f"no search result mentions the intake:\n{results}")
        plan = t.CITED_OPEN_PLAN.format(page=t.FACT_PAGE)
        return (
            f"<|start|>assistant<|channel|>analysis<|message|>{plan}<|end|><|start|>assistant"
            + browser_call("open", f'{{"id": {link}}}')
        )

    def _find(self, page: str) -> str:
        self.opened = page
        return (
            f"<|start|>assistant<|channel|>analysis<|message|>{t.CITED_FIND_PLAN}<|end|>"
            + "<|start|>assistant"
            + browser_call("find", f'{{"pattern": "{t.CITED_FIND}"}}')
        )

    def _answer(self, found: str) -> str:
        assert self.opened is not None
        answer = t.CITED_ANSWER.format(
            open_rebuilt=cite(self.opened, t.FACTS[0]),
            open_screens=cite(self.opened, t.FACTS[1]),
            find=cite(found, t.FACTS[2]),
        )
        return (
            f"<|start|>assistant<|channel|>analysis<|message|>{t.CITED_DONE}<|end|>"
            f"<|start|>assistant<|channel|>final<|message|>{answer}<|return|>"
        )


def cite(view: str, sentence: str) -> str:
    """`【cursor†Lx-Ly】` for the lines of `view` (a browser display) that hold `sentence`,
    whatever the line breaks."""
    cursor = _CURSOR.match(view)
    numbered = [m for m in map(_LINE.match, view.splitlines()) if m]
    if cursor is None or not numbered:
        raise RuntimeError(f"not a browser view:\n{view}")
    text, line_at = "", []
    for m in numbered:
        for word in m.group(2).split():
            text += word + " "
            line_at += [int(m.group(1))] * (len(word) + 1)
    start = text.find(" ".join(sentence.split()))
    if start < 0:
        raise RuntimeError(f"{sentence!r} is not in the view:\n{view}")
    first, last = line_at[start], line_at[start + len(" ".join(sentence.split())) - 1]
    lines = f"L{first}" if first == last else f"L{first}-L{last}"
    return f"【{cursor.group(1)}†{lines}】"


def browser_call(function: str, arguments: str) -> str:
    return f"<|channel|>analysis to=browser.{function} code<|message|>{arguments}<|call|>"


def earlier_chats(stage: Stage) -> None:
    """Two short chats, so the sidebar is not empty."""
    for question, answer in t.EARLIER_CHATS:
        stage.window.controller.new_chat()
        stage.script(answer, analysis="A short factual answer is enough here.")
        stage.send(question)


# name -> (scene, themes): the images each run writes, "<name>-<theme>.png" when two themes.
SCENES: dict[str, tuple[Callable[[str, Inputs, Path, bool], None], tuple[str, ...]]] = {
    "conversation": (conversation, ("light", "dark")),
    "search-hit": (search_hit, ("light",)),
    "finish-now": (finish_now, ("light",)),
    "cited-answer": (cited_answer, ("light",)),
    "demo": (demo, ("light",)),
    "python-approval": (python_approval, ("light",)),
    "python-answer": (python_answer, ("light",)),
}
