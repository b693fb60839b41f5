"""Reading the small files of a model folder (config.json, the safetensors index, the
tokenizer) without trusting them: only regular files, never more than a cap, so a folder with a
pipe, a device or a huge file in it gives a clear ModelLoadError instead of a hang or an OOM.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from engine.errors import ModelLoadError

FILE_REMEDY = "Restore the model's original files, or download the model again."


def read_regular_file(path: Path, max_bytes: int) -> bytes:
    """The bytes of `path`. Raises FileNotFoundError if there is none, else ModelLoadError for
    anything but a regular file of at most `max_bytes`."""
    try:
        st = os.stat(path)
    except FileNotFoundError:
        raise
    except (OSError, ValueError) as e:  # ValueError: a NUL in the path
        raise ModelLoadError(f"{path} cannot be read: {getattr(e, 'strerror', None) or e}.") from e
    _require_regular(path, st.st_mode)
    if st.st_size > max_bytes:
        raise _too_big(path, max_bytes)
    try:
        # O_NONBLOCK: if a FIFO was swapped in after the stat, open must not wait for a writer.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            st = os.fstat(f.fileno())
            _require_regular(path, st.st_mode)
            # Reading what fstat reports (plus one) avoids allocating `max_bytes` up front.
            raw = f.read(min(st.st_size, max_bytes) + 1)
    except OSError as e:
        raise ModelLoadError(f"{path} cannot be read: {e.strerror or e}.") from e
    if len(raw) > max_bytes:
        raise _too_big(path, max_bytes)
    return raw


def read_json_file(path: Path, max_bytes: int) -> Any:
    """Parses a small JSON file. Raises FileNotFoundError if there is none, else ModelLoadError
    for anything but a regular file of at most `max_bytes` holding valid, sanely nested JSON."""
    raw = read_regular_file(path, max_bytes)
    try:
        return json.loads(raw)
    except json.JSONDecodeError as e:
        raise ModelLoadError(f"{path} is not valid JSON (line {e.lineno}). {FILE_REMEDY}") from None
    except RecursionError:
        raise ModelLoadError(
            f"{path} nests its JSON too deeply to be a model file. {FILE_REMEDY}"
        ) from None
    except ValueError:  # bad UTF-8, or an integer of more than 4,300 digits
        raise ModelLoadError(f"{path} is not valid JSON. {FILE_REMEDY}") from None


def _require_regular(path: Path, mode: int) -> None:
    if stat.S_ISREG(mode):
        return
    kind = (
        "a folder"
        if stat.S_ISDIR(mode)
        else "a named pipe"
        if stat.S_ISFIFO(mode)
        else "a device"
        if stat.S_ISCHR(mode) or stat.S_ISBLK(mode)
        else "not a regular file"
    )
    raise ModelLoadError(
        f"{path} is {kind}, not an ordinary file, so OSS Desk does not read it. {FILE_REMEDY}"
    )


def _too_big(path: Path, max_bytes: int) -> ModelLoadError:
    return ModelLoadError(
        f"{path} is larger than {max_bytes:,} bytes, far more than a real {path.name}. "
        + FILE_REMEDY
    )
