"""The macOS Seatbelt profile and launcher (engine/tools/python/macos.py), checked as text here:
sandbox-exec exists only on a Mac."""

from __future__ import annotations

import re
from pathlib import Path

from engine.tools.python import macos
from engine.tools.python.session import child_command, python_roots


def _command(tmp_path: Path) -> list[str]:
    work = tmp_path / "work"
    (work / "documents").mkdir(parents=True)
    child = child_command({"sandbox": "macos"})
    return macos.sandbox_command(child, work, work / "documents", python_roots())


def _balanced(text: str) -> bool:
    depth = 0
    for char in re.sub(r'"[^"]*"', "", text):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth < 0:
            return False
    return depth == 0


def test_the_profile_denies_by_default_and_allows_no_network() -> None:
    text = macos.profile(private_roots=5, readable_roots=3)
    assert text.startswith("(version 1)\n(deny default)\n")
    assert _balanced(text)
    assert "network" not in text  # under (deny default), no rule means no socket at all
    assert "(allow default)" not in text


def test_the_profile_writes_only_the_work_folder_and_never_its_documents() -> None:
    text = macos.profile(private_roots=5, readable_roots=3)
    writes = [line for line in text.splitlines() if "file-write" in line]
    assert writes == [
        '(allow file-write-data (require-all (literal "/dev/null") (vnode-type CHARACTER-DEVICE)))',
        '(allow file-write* (require-all (subpath (param "WORK_DIR")) '
        '(require-not (subpath (param "DOCUMENTS_DIR")))))',
    ]


def test_private_roots_are_unreadable_except_the_work_folder_and_python() -> None:
    text = macos.profile(private_roots=2, readable_roots=2)
    assert (
        "(allow file-read* (require-not (require-any "
        '(subpath (param "PRIVATE_0")) (subpath (param "PRIVATE_1")))))'
    ) in text
    assert (
        '(allow file-read* (subpath (param "WORK_DIR")) '
        '(subpath (param "READ_0")) (subpath (param "READ_1")))'
    ) in text


def test_every_parameter_the_profile_uses_is_passed_with_a_resolved_path(tmp_path: Path) -> None:
    link = tmp_path / "link"
    link.symlink_to(tmp_path, target_is_directory=True)
    command = macos.sandbox_command(["python"], link / "work", link / "work" / "documents", ["/x"])
    assert command[:2] == [macos.SANDBOX_EXEC, "-p"]
    text = command[2]
    defined = dict(
        command[i + 1].split("=", 1) for i in range(3, command.index("--")) if command[i] == "-D"
    )
    used = set(re.findall(r'\(param "([A-Z_0-9]+)"\)', text))
    assert used == set(defined)
    assert defined["WORK_DIR"] == str(tmp_path.resolve() / "work")  # the link is resolved
    assert defined["DOCUMENTS_DIR"] == str(tmp_path.resolve() / "work" / "documents")
    assert defined["PRIVATE_0"] == "/Users"
    assert defined["READ_0"] == "/x"
    assert str(tmp_path) not in text  # paths are parameters, never profile text


def test_the_launcher_runs_the_interpreter_command_after_the_options(tmp_path: Path) -> None:
    command = _command(tmp_path)
    tail = command[command.index("--") + 1 :]
    assert tail[:2] == [child_command({})[0], "-I"]
    assert tail[2].endswith("engine/tools/python/child.py")
    assert '"sandbox": "macos"' in tail[3]
