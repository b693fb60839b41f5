"""The python tool's sandbox on this machine: each test proves one denial with a real interpreter
in real Linux namespaces (engine/tools/python/linux.py)."""

from __future__ import annotations

import os
import shutil
import socket
import threading
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.tools.base import ToolOutcome
from engine.tools.python import PythonLimits, PythonTool
from tests.engine.tools.processes import inside_pid, wait_ended

REPO = Path(__file__).resolve().parents[3]


def run(tool: PythonTool, code: str) -> ToolOutcome:
    return tool.call("python", code, threading.Event())


@pytest.fixture(scope="module")
def tool() -> Iterator[PythonTool]:
    """One interpreter for the denials that leave it running, as a chat's would be."""
    python = PythonTool(PythonLimits(seconds=10))
    yield python
    python.close()


def sandbox_processes(tool: PythonTool) -> list[int]:
    """Host pids of every process in the interpreter's pid namespace."""
    namespace = os.readlink(f"/proc/{inside_pid(tool)}/ns/pid")
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if os.readlink(entry / "ns" / "pid") == namespace:
                    found.append(int(entry.name))
            except OSError:
                continue  # ended meanwhile, or not ours to look at
    return found


def test_connecting_to_a_listener_on_the_hosts_loopback_fails(tool: PythonTool) -> None:
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        server.setblocking(False)
        port = server.getsockname()[1]
        outcome = run(tool, f"import socket\nsocket.create_connection(('127.0.0.1', {port}), 2)")
        with pytest.raises(BlockingIOError):
            server.accept()  # nothing ever reached it
    assert outcome.is_error
    assert "Network is unreachable" in outcome.text


def test_connecting_to_an_external_address_and_resolving_names_fail(tool: PythonTool) -> None:
    outcome = run(tool, "import socket\nsocket.create_connection(('1.1.1.1', 53), 2)")
    assert outcome.is_error
    assert "Network is unreachable" in outcome.text
    outcome = run(tool, "import socket\nsocket.getaddrinfo('example.com', 443)")
    assert "gaierror" in outcome.text


def test_writing_outside_the_work_folder_fails(tool: PythonTool) -> None:
    name = f"sandbox-escape-{uuid.uuid4().hex}"
    for folder in ("/tmp", str(REPO), "/mnt", "/dev/shm"):
        outcome = run(tool, f"open('{folder}/{name}', 'w').write('x')")
        assert outcome.is_error, folder
        assert "Read-only file system" in outcome.text, outcome.text
        assert not Path(folder, name).exists()
    # The work folder itself is writable, and the host sees what was written there.
    outcome = run(tool, f"open('{name}', 'w').write('kept')")
    assert not outcome.is_error, outcome.text
    assert (tool.work_folder / name).read_text() == "kept"


def test_the_tests_private_file_is_not_visible(tool: PythonTool, tmp_path: Path) -> None:
    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    secret.chmod(0o600)
    outcome = run(tool, f"print(open('{secret}').read())")
    assert outcome.is_error
    assert "FileNotFoundError" in outcome.text
    assert "top secret" not in outcome.text
    outcome = run(
        tool, "import os\nprint(os.listdir('/home'), os.listdir('/root'), os.listdir('/tmp'))"
    )
    assert "top secret" not in outcome.text
    assert "secret.txt" not in outcome.text


def test_a_file_only_root_may_read_is_unreadable(tool: PythonTool) -> None:
    if os.geteuid() == 0:
        # Put where the sandbox can see it, so only the permission check can refuse it.
        secret = tool.work_folder / f"root-only-{uuid.uuid4().hex}.txt"
        secret.write_text("root's secret")
        secret.chmod(0o600)
        path, content = f"/mnt/data/{secret.name}", "root's secret"
    else:
        # root's, and visible inside: the permission check refuses it
        path, content = "/etc/shadow", "root:"
    listed = run(tool, f"import os\nos.path.exists('{path}')")
    assert listed.text.strip() == "True"
    outcome = run(tool, f"print(open('{path}').read())")
    assert outcome.is_error
    assert "PermissionError" in outcome.text
    assert content not in outcome.text


def test_folders_the_app_names_are_hidden(tmp_path: Path) -> None:
    # /dev/shm is not hidden by default: a folder there shows the extra hiding is what works.
    shown = Path("/dev/shm", f"oss-desk-test-{uuid.uuid4().hex}")
    hidden = Path("/dev/shm", f"oss-desk-test-{uuid.uuid4().hex}")
    for folder in (shown, hidden):
        folder.mkdir(mode=0o755)
        (folder / "note.txt").write_text(f"in {folder.name}")
        (folder / "note.txt").chmod(0o644)
    python = PythonTool(hidden=[hidden])
    try:
        assert run(python, f"open('{shown}/note.txt').read()").text.strip() == f"'in {shown.name}'"
        outcome = run(python, f"open('{hidden}/note.txt').read()")
        assert "FileNotFoundError" in outcome.text
    finally:
        python.close()
        shutil.rmtree(shown)
        shutil.rmtree(hidden)


def test_a_fork_bomb_ends_with_a_clear_error_and_leaves_nothing_running(tool: PythonTool) -> None:
    outcome = run(tool, "import os\nwhile True:\n    os.fork()")
    assert outcome.is_error
    assert "too many processes or threads" in outcome.text
    assert outcome.duration_s < 5
    assert len(sandbox_processes(tool)) == 1  # the interpreter alone: the cell's are gone
    assert run(tool, "6 * 7").text.strip() == "42"


def test_allocating_2_gb_ends_with_memory_error_and_keeps_the_session(tool: PythonTool) -> None:
    run(tool, "kept = 'still here'")
    outcome = run(tool, "hog = bytearray(2 * 1024**3)")
    assert outcome.is_error
    assert "MemoryError" in outcome.text
    assert "ran out of memory: the limit is 1,024 MB" in outcome.text
    assert run(tool, "kept").text.strip() == "'still here'"


def test_an_infinite_loop_hits_the_time_limit_and_restarts_the_session() -> None:
    python = PythonTool(PythonLimits(seconds=1))
    try:
        run(python, "x = 5")
        first = python.pid
        inside = inside_pid(python)
        outcome = run(python, "while True:\n    pass")
        assert outcome.is_error
        assert "still running after 1 s" in outcome.text
        assert "variables and imports from earlier calls are gone" in outcome.text
        assert 1 <= outcome.duration_s < 3
        assert wait_ended(inside)  # the looping interpreter itself, not only its parent
        assert "NameError" in run(python, "x").text  # a fresh interpreter
        assert python.pid not in (None, first)
    finally:
        python.close()


def test_a_file_larger_than_the_limit_cannot_be_written() -> None:
    python = PythonTool(PythonLimits(file_bytes=1 << 20))
    try:
        outcome = run(python, "open('big', 'wb').write(b'x' * (2 << 20))")
        assert outcome.is_error
        assert "File too large" in outcome.text
        assert (python.work_folder / "big").stat().st_size <= 1 << 20
    finally:
        python.close()
