"""Frames between the app and its python interpreter: a 4-byte big-endian length, then JSON.

Standard library only: the interpreter process imports this without the engine package.
"""

from __future__ import annotations

import json
import os
import struct
from typing import Any

_HEADER = struct.Struct(">I")
MAX_FRAME = 64 << 20  # a reply is bounded by the output cap; more means a broken peer


class ProtocolError(Exception):
    """The other side sent something that is not a frame."""


def encode(message: dict[str, Any]) -> bytes:
    body = json.dumps(message, ensure_ascii=False).encode("utf-8")
    return _HEADER.pack(len(body)) + body


def write_frame(fd: int, message: dict[str, Any]) -> None:
    view = memoryview(encode(message))
    while view:
        view = view[os.write(fd, view) :]


def read_frame(fd: int) -> dict[str, Any] | None:
    """The next frame, blocking; None at the end of the stream."""
    header = _read_exactly(fd, _HEADER.size)
    if not header:
        return None
    if len(header) < _HEADER.size:
        raise ProtocolError("the stream ended inside a frame")
    (size,) = _HEADER.unpack(header)
    if size > MAX_FRAME:
        raise ProtocolError(f"a frame of {size:,} bytes is too long")
    body = _read_exactly(fd, size)
    if len(body) < size:
        raise ProtocolError("the stream ended inside a frame")
    return decode(body)


def decode(body: bytes) -> dict[str, Any]:
    try:
        message = json.loads(body)
    except ValueError as e:
        raise ProtocolError(f"a frame is not JSON: {e}") from None
    if not isinstance(message, dict):
        raise ProtocolError("a frame is not a JSON object")
    return message


class FrameBuffer:
    """Bytes read without blocking, cut into frames as they complete."""

    def __init__(self) -> None:
        self._data = bytearray()

    def feed(self, chunk: bytes) -> None:
        self._data += chunk

    def next_frame(self) -> dict[str, Any] | None:
        if len(self._data) < _HEADER.size:
            return None
        (size,) = _HEADER.unpack_from(self._data)
        if size > MAX_FRAME:
            raise ProtocolError(f"a frame of {size:,} bytes is too long")
        end = _HEADER.size + size
        if len(self._data) < end:
            return None
        body = bytes(self._data[_HEADER.size : end])
        del self._data[:end]
        return decode(body)


def _read_exactly(fd: int, size: int) -> bytes:
    """`size` bytes, or fewer if the stream ends first."""
    chunks = bytearray()
    while len(chunks) < size:
        chunk = os.read(fd, size - len(chunks))
        if not chunk:
            break
        chunks += chunk
    return bytes(chunks)
