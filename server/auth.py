"""Where the API key comes from, and which hosts may be bound without one.

Exposed model servers without auth are common (over 100,000 open Ollama servers were counted),
so a key is always required: given, read from a file, or generated once for loopback use and
kept in a file only the user can read.
"""

from __future__ import annotations

import ipaddress
import os
import secrets
import socket
from pathlib import Path

import platformdirs


class KeyError_(Exception):
    """The key cannot be used; the message says what to do."""


def default_key_file() -> Path:
    return Path(platformdirs.user_config_dir("OSS Desk", "OSS Desk")) / "server-api-key"


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        try:
            return all(ipaddress.ip_address(a).is_loopback for a in _addresses(host))
        except OSError:
            return False


def _addresses(host: str) -> set[str]:
    return {str(info[4][0]) for info in socket.getaddrinfo(host, None)}


def read_key_file(path: Path) -> str:
    try:
        key = path.read_text(encoding="utf-8").strip()
    except OSError as e:
        raise KeyError_(
            f"The API key file {path} cannot be read ({e.strerror}). Check the path."
        ) from None
    if not key:
        raise KeyError_(f"The API key file {path} is empty. Put the key on its first line.")
    return key


def make_key() -> str:
    return "osk-" + secrets.token_urlsafe(32)


def generated_key(path: Path) -> tuple[str, bool]:
    """The key kept at `path`, made (0600) if there is none yet; True if it was made now."""
    if path.is_file():
        return read_key_file(path), False
    path.parent.mkdir(parents=True, exist_ok=True)
    key = make_key()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(key + "\n")
    return key, True


def resolve_key(
    host: str, key: str | None, key_file: Path | None, default_file: Path
) -> tuple[str, str]:
    """(key, a line telling the user where it comes from). Refuses a non-loopback host without
    a key given explicitly."""
    if key is not None and key_file is not None:
        raise KeyError_("Give either --api-key or --api-key-file, not both.")
    if key is not None:
        if len(key) < 8:
            raise KeyError_("The API key is too short. Use at least 8 characters.")
        return key, "Using the API key given with --api-key."
    if key_file is not None:
        return read_key_file(key_file), f"Using the API key in {key_file}."
    if not is_loopback(host):
        raise KeyError_(
            f"Refusing to serve on {host} without an API key: other devices could use the model. "
            "Pass --api-key or --api-key-file, or serve on 127.0.0.1."
        )
    made, new = generated_key(default_file)
    if new:
        return made, f"API key (shown once; kept in {default_file}, mode 0600): {made}"
    return made, f"Using the API key kept in {default_file}."
