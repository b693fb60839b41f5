"""One safetensors file holding named arrays and a JSON manifest, written atomically and checked
on read.

The manifest goes in the header's `__metadata__` (so a file is one unit: it can never pair a
manifest with another save's tensors) together with the SHA-256 of the data section, which
catches flipped bytes that would still parse. The file is written by hand rather than with
`mx.save_safetensors` so that every write error reaches us (a full disk must be a value, not a
silently short file), the hash is computed in the same pass, and the file is fsynced before the
rename that publishes it.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import struct
import tempfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

FORMAT = 1
MANIFEST_KEY = "oss_desk_prompt_cache"
MAX_HEADER_BYTES = 64 * 2**20  # a header this large is corruption, not a chat
_PENDING = "p" * 64  # stands in for the data's SHA-256 (64 hex digits) until it is known

# safetensors dtype name -> (MLX dtype, numpy dtype of the raw bytes)
_DTYPES: dict[str, tuple[mx.Dtype, type[np.generic]]] = {
    "F32": (mx.float32, np.float32),
    "F16": (mx.float16, np.float16),
    "BF16": (mx.bfloat16, np.uint16),  # numpy has no bfloat16: carried as its raw 16 bits
    "U32": (mx.uint32, np.uint32),
}
_NAMES = {mx_dtype: name for name, (mx_dtype, _) in _DTYPES.items()}


class CacheFileError(ValueError):
    """The file is missing, truncated, altered or not one of ours."""


def _raw(array: mx.array) -> np.ndarray:
    if array.dtype == mx.bfloat16:
        array = array.view(mx.uint16)
    return np.ascontiguousarray(np.asarray(array))


def write(path: Path, arrays: Mapping[str, mx.array], manifest: Mapping[str, Any]) -> int:
    """Writes `arrays` and `manifest` to `path` via a temporary file in the same folder.

    Tensors are converted and written one at a time, so the transient memory is one tensor,
    not the whole file; the data's hash is filled into the header at the end (same length).
    Returns the bytes written. Raises OSError (disk full, no permission) with nothing left
    behind: the previous file at `path`, if any, stays as it was."""
    entries: dict[str, Any] = {}
    start = 0
    for name, array in arrays.items():
        if array.dtype not in _NAMES:
            raise ValueError(f"{name}: dtype {array.dtype} cannot be kept in a prompt cache")
        entries[name] = {"dtype": _NAMES[array.dtype], "shape": list(array.shape),
                         "data_offsets": [start, start + array.nbytes]}  # fmt: skip
        start += array.nbytes
    meta = {**manifest, "format": FORMAT, "data_sha256": _PENDING, "data_bytes": start}
    entries["__metadata__"] = {MANIFEST_KEY: json.dumps(meta, separators=(",", ":"))}
    header = json.dumps(entries, separators=(",", ":")).encode()
    header += b" " * (-len(header) % 8)  # safetensors aligns the data section to 8 bytes
    hash_at = 8 + header.index(_PENDING.encode())
    digest = hashlib.sha256()
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-", suffix=".safetensors")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(struct.pack("<Q", len(header)))
            f.write(header)
            for array in arrays.values():
                raw = _raw(array)
                digest.update(raw.data)
                f.write(raw.data)
                del raw
            f.seek(hash_at)
            f.write(digest.hexdigest().encode())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return 8 + len(header) + start


def read_manifest(path: Path) -> tuple[dict[str, Any], dict[str, Any], int]:
    """The manifest, the tensor table and where the data section starts; reads only the
    header. Raises CacheFileError or OSError."""
    with path.open("rb") as f:
        size = os.fstat(f.fileno()).st_size
        head = f.read(8)
        if len(head) < 8:
            raise CacheFileError(f"{path.name} is shorter than a safetensors header")
        (n,) = struct.unpack("<Q", head)
        if n > min(MAX_HEADER_BYTES, size - 8):
            raise CacheFileError(f"{path.name} declares a {n}-byte header in {size} bytes")
        try:
            table = json.loads(f.read(n))
            manifest = json.loads(table.pop("__metadata__")[MANIFEST_KEY])
        except (ValueError, KeyError, TypeError, AttributeError) as e:
            raise CacheFileError(f"{path.name} has no readable manifest ({e})") from e
    if not isinstance(manifest, dict) or manifest.get("format") != FORMAT:
        raise CacheFileError(f"{path.name} is not a format-{FORMAT} prompt cache")
    if size != 8 + n + manifest.get("data_bytes", -1):
        raise CacheFileError(f"{path.name} is {size} bytes, not what its header describes")
    return manifest, table, 8 + n


def read(path: Path) -> tuple[dict[str, Any], dict[str, mx.array]]:
    """The manifest and every array, after checking the data against the manifest's hash. The
    file is mapped, not read into a buffer, so the arrays are the only copy in memory."""
    manifest, table, start = read_manifest(path)
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as mapped:
        data = memoryview(mapped)[start:]
        try:
            if hashlib.sha256(data).hexdigest() != manifest.get("data_sha256"):
                raise CacheFileError(f"{path.name}: the data does not match its checksum")
            return manifest, _arrays(path, table, data)
        finally:
            data.release()


def _arrays(path: Path, table: dict[str, Any], data: memoryview) -> dict[str, mx.array]:
    arrays: dict[str, mx.array] = {}
    try:
        for name, entry in table.items():
            mx_dtype, np_dtype = _DTYPES[entry["dtype"]]
            begin, end = (int(x) for x in entry["data_offsets"])
            shape = tuple(int(s) for s in entry["shape"])
            if not 0 <= begin <= end <= len(data):
                raise ValueError(f"{name} lies outside the data")
            # bytes() copies one tensor out, so no view outlives the mapping (even on errors)
            raw = np.frombuffer(bytes(data[begin:end]), np_dtype).reshape(shape)
            array = mx.array(raw)
            arrays[name] = array.view(mx_dtype) if mx_dtype == mx.bfloat16 else array
    except (KeyError, ValueError, TypeError) as e:
        raise CacheFileError(f"{path.name}: tensor table is inconsistent ({e})") from e
    mx.eval(list(arrays.values()))
    return arrays
