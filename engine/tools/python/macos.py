"""The macOS sandbox: the interpreter runs under `sandbox-exec` with a Seatbelt profile.

The profile starts from "deny everything" and allows what an interpreter needs: running and
forking itself, reading the system and Python's own files, and writing only the chat's work folder
(not its `documents`). Nothing allows a network operation, so every socket connect, bind and
send is refused. The places people keep private files (/Users, /Volumes, the per-user temporary
folders) are unreadable except the paths Python itself is installed in. Paths are passed as
parameters (-D), never pasted into the profile text, and are resolved first (/var is /private/var
on macOS, and Seatbelt matches resolved paths). This cannot run on Linux; its tests check the
profile text and the command.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from pathlib import Path

SANDBOX_EXEC = "/usr/bin/sandbox-exec"
PRIVATE_ROOTS = ("/Users", "/Volumes", "/private/var/folders", "/private/var/root", "/private/tmp")

_BASE = """\
(version 1)
(deny default)
(allow process-exec)
(allow process-fork)
(allow signal (target same-sandbox))
(allow process-info* (target same-sandbox))
(allow sysctl-read)
(allow ipc-posix-sem)
(allow mach-lookup (global-name "com.apple.system.opendirectoryd.libinfo"))
(allow file-read-metadata)
(allow file-write-data (require-all (literal "/dev/null") (vnode-type CHARACTER-DEVICE)))
"""


def sandbox_available() -> bool:
    return sys.platform == "darwin" and os.access(SANDBOX_EXEC, os.X_OK)


def profile(private_roots: int, readable_roots: int) -> str:
    """The profile's text for that many private and readable roots (given as parameters)."""
    private = " ".join(f'(subpath (param "PRIVATE_{i}"))' for i in range(private_roots))
    readable = " ".join(f'(subpath (param "READ_{i}"))' for i in range(readable_roots))
    lines = [
        _BASE.rstrip("\n"),
        f"(allow file-read* (require-not (require-any {private})))",
        f'(allow file-read* (subpath (param "WORK_DIR")) {readable})',
        "(allow file-write* (require-all"
        ' (subpath (param "WORK_DIR")) (require-not (subpath (param "DOCUMENTS_DIR")))))',
    ]
    return "\n".join(lines) + "\n"


def parameters(
    work: Path, documents: Path, readable: Sequence[str], private: Sequence[str] = PRIVATE_ROOTS
) -> dict[str, str]:
    values = {
        "WORK_DIR": os.path.realpath(work),
        "DOCUMENTS_DIR": os.path.realpath(documents),
    }
    values.update({f"PRIVATE_{i}": os.path.realpath(root) for i, root in enumerate(private)})
    values.update({f"READ_{i}": root for i, root in enumerate(readable)})
    return values


def sandbox_command(
    command: Sequence[str], work: Path, documents: Path, readable: Sequence[str]
) -> list[str]:
    """`command` run under sandbox-exec with the profile for this work folder; `readable`:
    where Python and the app are installed, readable even inside a private root."""
    text = profile(len(PRIVATE_ROOTS), len(readable))
    arguments = [SANDBOX_EXEC, "-p", text]
    for name, value in parameters(work, documents, readable).items():
        arguments += ["-D", f"{name}={value}"]
    return [*arguments, "--", *command]
