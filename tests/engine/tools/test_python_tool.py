"""The python tool as the chat's tool loop uses it: a stateful notebook, output as the model reads
it, cancel, close and attached documents, with a real sandboxed interpreter."""

from __future__ import annotations

import json
import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.harmony import python_namespace
from engine.tools.base import ToolOutcome, ToolProvider
from engine.tools.python import PythonLimits, PythonTool, session
from engine.tools.python.session import Interpreter, SandboxUnavailableError
from engine.tools.python.tool import NO_OUTPUT, _probe
from tests.engine.tools.processes import inside_pid, wait_ended


def run(tool: PythonTool, code: str) -> ToolOutcome:
    return tool.call("python", code, threading.Event())


@pytest.fixture
def tool() -> Iterator[PythonTool]:
    python = PythonTool()
    yield python
    python.close()


def test_it_is_a_tool_provider_offering_the_python_namespace() -> None:
    python: ToolProvider = PythonTool()
    try:
        assert python.system_namespaces() == (python_namespace(),)
        assert python.functions() == ()
        assert python.handles("python")
        assert not python.handles("functions.python")
        assert not python.handles("browser.search")
        assert python.needs_approval("python")
    finally:
        python.close()


def test_the_sandbox_is_available_here() -> None:
    assert PythonTool.availability() is None


def test_without_a_sandbox_the_reason_is_a_sentence_for_the_user() -> None:
    reason = _probe(None)
    assert reason is not None
    assert reason.startswith("Python is not available: ")
    assert reason.endswith(".")


def test_a_sandbox_that_cannot_be_set_up_says_why(tmp_path: Path) -> None:
    with pytest.raises(SandboxUnavailableError, match=r"^Python is not available: .*missing"):
        Interpreter(
            "linux", tmp_path / "missing", tmp_path / "missing" / "documents", PythonLimits()
        )


def test_variables_persist_between_calls(tool: PythonTool) -> None:
    assert run(tool, "x = 1").text == NO_OUTPUT
    assert run(tool, "x + 1").text == "2\n"
    run(tool, "import math\ndef area(r):\n    return math.pi * r * r")
    assert run(tool, "round(area(2), 3)").text == "12.566\n"


def test_a_cell_shows_prints_then_its_last_expression(tool: PythonTool) -> None:
    outcome = run(tool, "print('first')\nimport sys\nprint('to stderr', file=sys.stderr)\n[1, 2]")
    assert outcome.text == "first\nto stderr\n[1, 2]\n"
    assert not outcome.is_error
    assert run(tool, "None").text == NO_OUTPUT  # as in a notebook, None is not shown
    assert run(tool, "import os\nos.system('echo from a subprocess')").text == (
        "from a subprocess\n0\n"
    )


def test_an_exception_is_its_traceback_and_the_session_goes_on(tool: PythonTool) -> None:
    run(tool, "y = 3")
    outcome = run(tool, "def f():\n    return 1 / 0\nf()")
    assert outcome.is_error
    assert 'File "<cell 2>", line 2, in f' in outcome.text
    assert outcome.text.rstrip().endswith("ZeroDivisionError: division by zero")
    assert "repl.py" not in outcome.text  # the notebook's own frames are not shown
    syntax = run(tool, "def (")
    assert syntax.is_error and "SyntaxError" in syntax.text
    assert run(tool, "y").text == "3\n"


def test_huge_output_is_cut_visibly(tool: PythonTool) -> None:
    outcome = run(tool, "print('a' * 100_000 + 'END')")
    assert outcome.truncated
    assert len(outcome.text) < 16_500
    assert "characters cut" in outcome.text
    assert outcome.text.rstrip().endswith("END")
    # Far more than the interpreter keeps: only both ends come back, still marked as cut.
    outcome = run(tool, "for i in range(300_000):\n    print(i)")
    assert outcome.truncated
    assert outcome.text.startswith("0\n1\n2\n")
    assert outcome.text.rstrip().endswith("299999")
    assert "characters cut" in outcome.text


def test_cancel_interrupts_a_running_cell_quickly_and_keeps_the_session(tool: PythonTool) -> None:
    run(tool, "z = 'kept'")
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    outcome = tool.call(
        "python", "import time\nprint('started', flush=True)\ntime.sleep(30)", cancel
    )
    assert outcome.duration_s < 0.5 + 0.3
    assert outcome.is_error
    assert outcome.text.startswith("started\n")
    assert "KeyboardInterrupt" in outcome.text
    assert outcome.text.rstrip().endswith("[Stopped by the user.]")
    assert run(tool, "z").text == "'kept'\n"


def test_cancel_kills_a_cell_that_does_not_see_the_interrupt(tool: PythonTool) -> None:
    run(tool, "w = 1")
    inside = inside_pid(tool)
    cancel = threading.Event()
    threading.Timer(0.5, cancel.set).start()
    started = time.monotonic()
    outcome = tool.call("python", "sum(range(10**12))", cancel)  # one C call, no checks
    assert time.monotonic() - started < 0.5 + 0.3
    assert outcome.text.startswith("[Stopped by the user.]")
    assert "variables and imports from earlier calls are gone" in outcome.text
    assert wait_ended(inside)  # the stuck cell's process, not only the one the app started
    assert "NameError" in run(tool, "w").text


def test_close_removes_the_work_folder_and_ends_the_process() -> None:
    python = PythonTool()
    run(python, "open('notes.txt', 'w').write('x')")
    outside = python.pid
    assert outside is not None
    inside = inside_pid(python)
    assert (python.work_folder / "notes.txt").exists()
    python.close()
    assert not python.work_folder.exists()
    assert wait_ended(outside, inside)
    python.close()  # idempotent
    assert run(python, "1").is_error


def test_attached_documents_are_readable_copies_that_cannot_be_changed(
    tool: PythonTool, tmp_path: Path
) -> None:
    original = tmp_path / "report.csv"
    original.write_text("region,sales\nnorth,12\nsouth,30\n")
    (path,) = tool.attach([original])
    assert path == "/mnt/data/documents/report.csv"
    outcome = run(tool, f"import csv\nsum(int(r['sales']) for r in csv.DictReader(open('{path}')))")
    assert outcome.text == "42\n"
    for code in (f"open('{path}', 'a').write('x')", f"import os\nos.remove('{path}')"):
        denied = run(tool, code)
        assert "PermissionError" in denied.text or "Read-only file system" in denied.text
    # Whoever owns the copies, the mount refuses writes: no chmod can undo that.
    mounts = run(tool, "print(open('/proc/self/mountinfo').read())").text.splitlines()
    options = {line.split()[4]: line.split()[5].split(",")[0] for line in mounts if line}
    assert options["/mnt/data/documents"] == "ro"
    assert options["/mnt/data"] == "rw"
    assert options["/"] == "ro"
    assert original.read_text().endswith("south,30\n")
    # A document attached later, while the interpreter runs, shows up as well.
    later = tmp_path / "later.txt"
    later.write_text("later")
    tool.attach([later])
    assert run(tool, "open('documents/later.txt').read()").text == "'later'\n"
    assert os.access(tool.documents_folder / "later.txt", os.R_OK)


def test_the_bundles_entry_point_runs_the_interpreter(monkeypatch: pytest.MonkeyPatch) -> None:
    # A bundle has no python to run child.py with: packaging/entry.py routes --python-tool.
    entry = Path(__file__).resolve().parents[3] / "packaging" / "entry.py"
    monkeypatch.setattr(
        session,
        "child_command",
        lambda config: [sys.executable, "-I", str(entry), session.FROZEN_FLAG, json.dumps(config)],
    )
    python = PythonTool()
    try:
        assert run(python, "import os\nos.getcwd()").text == "'/mnt/data'\n"
    finally:
        python.close()


def test_an_interpreter_that_died_between_calls_is_restarted_and_says_so(tool: PythonTool) -> None:
    run(tool, "v = 1")
    pid = tool.pid
    assert pid is not None
    os.kill(pid, signal.SIGKILL)  # as the system's out-of-memory killer would
    deadline = time.monotonic() + 2
    while tool.pid is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    outcome = run(tool, "v")
    assert outcome.text.startswith("[The Python session had ended and was started again.")
    assert "NameError" in outcome.text
    assert tool.pid not in (None, pid)


def test_the_sandbox_ends_with_the_app_even_in_the_middle_of_a_cell(tool: PythonTool) -> None:
    run(tool, "1")
    interpreter = tool._interpreter
    assert interpreter is not None
    outside, inside = interpreter.pid, inside_pid(tool)
    results: list[ToolOutcome] = []
    cell = threading.Thread(target=lambda: results.append(run(tool, "while True:\n    pass")))
    cell.start()
    time.sleep(0.3)
    # What a crash of the app does to the pipe it holds open: nothing else is signalled.
    os.close(interpreter._lifeline)
    interpreter._lifeline = -1
    assert wait_ended(outside, inside)
    cell.join(5)
    assert results and results[0].is_error
    assert "ended unexpectedly" in results[0].text
