"""What the app and the interpreter share: frames on a pipe, and the bounded output capture."""

from __future__ import annotations

import os
import struct

import pytest

from engine.tools.python.protocol import (
    MAX_FRAME,
    FrameBuffer,
    ProtocolError,
    encode,
    read_frame,
    write_frame,
)
from engine.tools.python.repl import Capture


def test_frames_cross_a_pipe_intact() -> None:
    read_end, write_end = os.pipe()
    try:
        write_frame(write_end, {"code": "print('é')\n" * 3})
        write_frame(write_end, {"n": 2})
        os.close(write_end)
        assert read_frame(read_end) == {"code": "print('é')\n" * 3}
        assert read_frame(read_end) == {"n": 2}
        assert read_frame(read_end) is None
    finally:
        os.close(read_end)


def test_a_frame_fed_in_pieces_comes_out_once_complete() -> None:
    data = encode({"head": "x" * 1000}) + encode({"tail": "y"})
    buffer = FrameBuffer()
    for at in range(0, len(data), 7):
        buffer.feed(data[at : at + 7])
        if at + 7 < 1000:
            assert buffer.next_frame() is None
    assert buffer.next_frame() == {"head": "x" * 1000}
    assert buffer.next_frame() == {"tail": "y"}
    assert buffer.next_frame() is None


def test_a_broken_peer_is_a_protocol_error() -> None:
    buffer = FrameBuffer()
    buffer.feed(struct.pack(">I", MAX_FRAME + 1))
    with pytest.raises(ProtocolError, match="too long"):
        buffer.next_frame()
    buffer = FrameBuffer()
    buffer.feed(struct.pack(">I", 2) + b"[]")
    with pytest.raises(ProtocolError, match="not a JSON object"):
        buffer.next_frame()


def test_capture_keeps_both_ends_and_counts_what_it_dropped() -> None:
    capture = Capture(keep=10)
    for piece in ("0123456789", "abcdefghij", "KLMNOPQRST", "uvwxyz"):
        capture.feed(piece)
    assert capture.take() == ("0123456789", "QRSTuvwxyz", 16)
    assert capture.take() == ("", "", 0)


def test_the_end_marker_is_found_across_reads_and_never_shown() -> None:
    capture = Capture(keep=100)
    seen = capture.expect("\0end-1\0")
    for piece in ("out", "put\0e", "nd", "-1\0"):
        assert not seen.is_set()
        capture.feed(piece)
    assert seen.is_set()
    assert capture.take() == ("output", "", 0)
