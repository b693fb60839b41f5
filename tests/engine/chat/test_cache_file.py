"""The prompt cache's file: every dtype a KV cache uses round-trips bit for bit (bfloat16 is
what a Mac's cache holds), the manifest rides in the header, and the file is a safetensors file
other readers accept."""

from __future__ import annotations

import json
import struct
from pathlib import Path

import mlx.core as mx
import numpy as np
import pytest

from engine.chat import cache_file
from engine.chat.cache_file import CacheFileError


def _arrays() -> dict[str, mx.array]:
    rng = np.random.default_rng(0)
    base = mx.array(rng.standard_normal((1, 2, 5, 8)).astype(np.float32))
    return {
        "f32": base,
        "bf16": base.astype(mx.bfloat16),
        "f16": base.astype(mx.float16),
        "u32": mx.array(rng.integers(0, 2**32, (1, 2, 5, 2), dtype=np.uint32)),
        "view": base[:, :, 1:4],  # a slice, as the saved caches are
    }


def test_every_dtype_round_trips_bit_for_bit_with_the_manifest(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    arrays = _arrays()
    written = cache_file.write(path, arrays, {"tokens": [1, 2, 3]})
    assert written == path.stat().st_size
    manifest, loaded = cache_file.read(path)
    assert manifest["tokens"] == [1, 2, 3] and manifest["format"] == cache_file.FORMAT
    assert sorted(loaded) == sorted(arrays)
    for name, array in arrays.items():
        assert loaded[name].dtype == array.dtype and loaded[name].shape == array.shape
        assert mx.array_equal(loaded[name], array).item(), name
    # a plain safetensors file: MLX's own reader agrees
    other = mx.load(str(path))
    assert isinstance(other, dict) and mx.array_equal(other["bf16"], arrays["bf16"]).item()


def test_a_header_that_claims_more_than_the_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    cache_file.write(path, _arrays(), {})
    data = bytearray(path.read_bytes())
    data[:8] = struct.pack("<Q", 2**40)
    path.write_bytes(bytes(data))
    with pytest.raises(CacheFileError, match="header"):
        cache_file.read(path)


def test_a_tensor_outside_the_data_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "c.safetensors"
    cache_file.write(path, {"a": mx.zeros((4,))}, {})
    data = path.read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    header["a"]["data_offsets"] = [8, 24]  # past the 16 data bytes; the hash still matches
    text = json.dumps(header, separators=(",", ":")).encode()
    text += b" " * (n - len(text))
    assert len(text) == n
    path.write_bytes(data[:8] + text + data[8 + n :])
    with pytest.raises(CacheFileError, match="outside"):
        cache_file.read(path)
