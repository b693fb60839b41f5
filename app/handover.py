"""A second launch's fast path: hand the files to the running OSS Desk with the standard library
alone, before Qt or anything else heavy is imported (issue 15: a hand-over in well under a
second; importing Qt's widgets alone takes longer than the whole exchange).

The running instance listens with a QLocalServer (app/single_instance.py) on a Unix socket named
by `server_name` in Qt's temporary folder ($TMPDIR, else /tmp). If nothing answers there (no
instance, a stale file, another OS), the launch goes on to start Qt, where SingleInstance
decides again: this path only ever skips work, it never decides alone that we are the first.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import re
import socket
from collections.abc import Sequence
from pathlib import Path

import platformdirs

APP_NAME = "OSS Desk"
TIMEOUT_S = 1.0


def default_data_folder() -> Path:
    """The user's data folder (~/Library/Application Support/OSS Desk), not created here."""
    return Path(platformdirs.user_data_dir(APP_NAME, APP_NAME))


def server_name(app_id: str) -> str:
    """A short per-user name: macOS limits socket paths to 104 bytes, and $TMPDIR is long."""
    user = str(os.getuid()) if hasattr(os, "getuid") else getpass.getuser()
    digest = hashlib.sha256(f"{app_id}\0{user}".encode()).hexdigest()[:12]
    return f"{re.sub(r'[^A-Za-z0-9]', '', app_id)[:24]}-{digest}"


def folder_app_id(app_id: str, data_folder: Path | str) -> str:
    """An app id for one data folder, however it is spelled: "~", symlinks, ".." and a trailing
    slash all resolve to the same real path (a case-insensitive disk may still differ by case;
    the history's lock file catches that)."""
    real = os.path.realpath(os.path.expanduser(data_folder))
    return f"{app_id}-{hashlib.sha256(real.encode()).hexdigest()[:12]}"


def socket_path(name: str) -> Path:
    """Where QLocalServer.listen(name) puts its socket on Unix (QDir::tempPath() + name)."""
    return Path(os.environ.get("TMPDIR", "").rstrip("/") or "/tmp") / name


def handover_message(paths: Sequence[str]) -> bytes:
    """The one line a second launch sends: its files, and a request to come to the front."""
    message = {"files": [os.path.abspath(p) for p in paths], "activate": True}
    return json.dumps(message).encode() + b"\n"


def hand_over(name: str, paths: Sequence[str], timeout_s: float = TIMEOUT_S) -> bool:
    """Sends `paths` to the instance listening as `name`; False when none takes them."""
    if not hasattr(socket, "AF_UNIX"):
        return False
    try:
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as s:
            s.settimeout(timeout_s)
            s.connect(str(socket_path(name)))
            s.sendall(handover_message(paths))  # the kernel keeps the line after we close
    except OSError:
        return False
    return True
