"""What a Hugging Face gpt-oss checkpoint holds, read from its files without loading a tensor:
the shard list, each safetensors header, and the check of names, shapes and dtypes against the
config. No MLX here, so the app can check a folder (setup, memory plan) before the engine loads.

Each header is checked against the file's size (and read only from a regular file, with its
length capped), so a truncated download, a wrong model or a crafted file fails with a message
that names the file and the tensor.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

from engine.config import ModelArgs, read_json_file, shown
from engine.errors import ModelLoadError

BYTES_PER_BLOCK = 16  # 32 FP4 values, two per byte, low nibble first
VALUES_PER_BLOCK = 32
INDEX_FILE = "model.safetensors.index.json"
SINGLE_FILE = "model.safetensors"
# Every dtype safetensors knows, so a wrong one is named as such rather than as a bad size.
DTYPE_BYTES = {
    "BOOL": 1, "U8": 1, "I8": 1, "F8_E4M3": 1, "F8_E5M2": 1, "I16": 2, "U16": 2, "F16": 2,
    "BF16": 2, "I32": 4, "U32": 4, "F32": 4, "I64": 8, "U64": 8, "F64": 8,
}  # fmt: skip
MAX_HEADER_BYTES = 16 << 20  # gpt-oss-120b's largest header is about 100 KB
MAX_INDEX_BYTES = 64 << 20
MAX_SHARDS = 1000
MAX_DIMS = 8


@dataclass(frozen=True)
class TensorInfo:
    name: str
    shape: tuple[int, ...]
    dtype: str
    file: Path
    start: int  # absolute byte offsets in the file
    end: int


def expected_tensors(args: ModelArgs) -> dict[str, tuple[tuple[int, ...], str]]:
    """Name -> (shape, safetensors dtype) of every tensor of the Hugging Face layout."""
    D, I, E = args.hidden_size, args.intermediate_size, args.num_local_experts
    Hq, Hk = args.num_attention_heads * args.head_dim, args.num_key_value_heads * args.head_dim
    out: dict[str, tuple[tuple[int, ...], str]] = {
        "model.embed_tokens.weight": ((args.vocab_size, D), "BF16"),
        "model.norm.weight": ((D,), "BF16"),
        "lm_head.weight": ((args.vocab_size, D), "BF16"),
    }
    for i in range(args.num_hidden_layers):
        p = f"model.layers.{i}."
        layer = {
            "input_layernorm.weight": ((D,), "BF16"),
            "post_attention_layernorm.weight": ((D,), "BF16"),
            "self_attn.q_proj.weight": ((Hq, D), "BF16"),
            "self_attn.q_proj.bias": ((Hq,), "BF16"),
            "self_attn.k_proj.weight": ((Hk, D), "BF16"),
            "self_attn.k_proj.bias": ((Hk,), "BF16"),
            "self_attn.v_proj.weight": ((Hk, D), "BF16"),
            "self_attn.v_proj.bias": ((Hk,), "BF16"),
            "self_attn.o_proj.weight": ((D, Hq), "BF16"),
            "self_attn.o_proj.bias": ((D,), "BF16"),
            "self_attn.sinks": ((args.num_attention_heads,), "BF16"),
            "mlp.router.weight": ((E, D), "BF16"),
            "mlp.router.bias": ((E,), "BF16"),
            "mlp.experts.gate_up_proj_blocks": ((E, 2 * I, D // 32, BYTES_PER_BLOCK), "U8"),
            "mlp.experts.gate_up_proj_scales": ((E, 2 * I, D // 32), "U8"),
            "mlp.experts.gate_up_proj_bias": ((E, 2 * I), "BF16"),
            "mlp.experts.down_proj_blocks": ((E, D, I // 32, BYTES_PER_BLOCK), "U8"),
            "mlp.experts.down_proj_scales": ((E, D, I // 32), "U8"),
            "mlp.experts.down_proj_bias": ((E, D), "BF16"),
        }
        out.update({p + k: v for k, v in layer.items()})
    return out


def read_header(path: Path) -> dict[str, TensorInfo]:
    """Parses a safetensors header and checks that the file holds every byte it declares, in
    ranges no two tensors share."""
    raw, size = _header_bytes(path)
    try:
        header = json.loads(raw)
    except RecursionError:
        raise _damaged(path, "its safetensors header nests too deeply") from None
    except ValueError:  # bad JSON or UTF-8, or an integer of more than 4,300 digits
        raise ModelLoadError(f"{path.name} has a corrupt safetensors header.") from None
    if not isinstance(header, dict):
        raise _damaged(path, f"its safetensors header is {shown(header)}, not an object")
    base = 8 + len(raw)
    tensors: dict[str, TensorInfo] = {}
    for name, meta in header.items():
        if name != "__metadata__":
            tensors[name] = _tensor_info(path, name, meta, base, size)
    _check_overlaps(path, tensors.values())
    return tensors


def _header_bytes(path: Path) -> tuple[bytes, int]:
    """The JSON header of a safetensors file and the file's size; a regular file only."""
    try:
        st = os.stat(path)
        if not stat.S_ISREG(st.st_mode):
            raise _damaged(path, "it is not an ordinary file (a pipe, device or folder)")
        # O_NONBLOCK: a FIFO swapped in after the stat must not block the open.
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
        with os.fdopen(fd, "rb") as f:
            if not stat.S_ISREG(os.fstat(f.fileno()).st_mode):
                raise _damaged(path, "it is not an ordinary file")
            head = f.read(8)
            if len(head) < 8:
                raise ModelLoadError(f"{path.name} is truncated: it has no safetensors header.")
            (n,) = struct.unpack("<Q", head)
            if n > MAX_HEADER_BYTES:
                raise _damaged(path, f"its header claims {n:,} bytes, more than any checkpoint's")
            if n > st.st_size - 8:
                raise ModelLoadError(
                    f"{path.name} is truncated or not a safetensors file: its header claims "
                    f"{n:,} bytes but the file has {st.st_size:,}. Download it again."
                )
            raw = f.read(n)
    except FileNotFoundError:
        raise ModelLoadError(f"{path.name} is missing from {path.parent}.") from None
    except OSError as e:
        raise ModelLoadError(f"{path.name} cannot be read: {e.strerror or e}.") from e
    if len(raw) < n:
        raise ModelLoadError(f"{path.name} is truncated: it ends inside its header.")
    return raw, st.st_size


def _tensor_info(path: Path, name: str, meta: object, base: int, size: int) -> TensorInfo:
    """One header entry, checked: a known dtype, a shape, and a byte range inside the file that
    is exactly the shape's size."""
    if not isinstance(meta, dict):
        raise _damaged(path, f"the header entry of {name} is {shown(meta)}, not an object")
    dtype, shape, offsets = meta.get("dtype"), meta.get("shape"), meta.get("data_offsets")
    if not isinstance(dtype, str) or dtype not in DTYPE_BYTES:
        raise _damaged(path, f"{name} has the unknown dtype {shown(dtype)}")
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS and all(map(_count, shape))):
        raise _damaged(path, f"{name} has the shape {shown(shape)}, not a list of sizes")
    if not (isinstance(offsets, list) and len(offsets) == 2 and all(map(_count, offsets))):
        raise _damaged(path, f"{name} has the byte range {shown(offsets)}, not two offsets")
    start, end = offsets
    if start > end or end - start != math.prod(shape) * DTYPE_BYTES[dtype]:
        raise ModelLoadError(f"{path.name}: {name} declares a byte range that fits no shape.")
    if base + end > size:
        raise ModelLoadError(
            f"{path.name} is truncated: {name} needs bytes up to {base + end:,} but the file "
            f"has {size:,}. Download the file again."
        )
    return TensorInfo(name, tuple(shape), dtype, path, base + start, base + end)


def _count(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _check_overlaps(path: Path, tensors: Iterable[TensorInfo]) -> None:
    """Two tensors sharing bytes would load silently with each other's weights. Sorted by start,
    ranges are disjoint exactly when each one starts at or after the end of the one before."""
    ranges = sorted((t for t in tensors if t.end > t.start), key=lambda t: t.start)
    for before, info in pairwise(ranges):
        if info.start < before.end:
            raise _damaged(path, f"{info.name} and {before.name} claim the same bytes")


def _damaged(path: Path, problem: str) -> ModelLoadError:
    return ModelLoadError(f"{path.name} is damaged: {problem}. Download the model again.")


def checkpoint_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint: those in the index, else the single file."""
    index = model_dir / INDEX_FILE
    if index.is_symlink() or index.exists():
        try:
            data = read_json_file(index, MAX_INDEX_BYTES)
        except FileNotFoundError:  # a dangling symlink
            raise ModelLoadError(f"{INDEX_FILE} in {model_dir} is missing.") from None
        weight_map = data.get("weight_map") if isinstance(data, dict) else None
        if not isinstance(weight_map, dict) or not weight_map:
            raise ModelLoadError(
                f"{INDEX_FILE} in {model_dir} is corrupt: it has no weight_map. Download the "
                "model again."
            )
        problem = next(filter(None, map(shard_name_problem, weight_map.values())), None)
        if problem:
            raise ModelLoadError(
                f"{INDEX_FILE} in {model_dir} is corrupt: {problem}. Download the model again."
            )
        files: set[str] = set(weight_map.values())
        if len(files) > MAX_SHARDS:
            raise ModelLoadError(f"{INDEX_FILE} in {model_dir} lists {len(files):,} files.")
        return [model_dir / f for f in sorted(files)]
    if (model_dir / SINGLE_FILE).exists():
        return [model_dir / SINGLE_FILE]
    raise ModelLoadError(f"{model_dir} holds no {SINGLE_FILE} and no {INDEX_FILE}.")


def shard_name_problem(name: object) -> str | None:
    """Why an index entry cannot be a shard of this folder: shards are plain file names, never
    paths (which could point anywhere: ../../, /dev/zero)."""
    if not isinstance(name, str):
        return f"it lists {shown(name)} as a file"
    if any(c in name for c in ("/", "\\", "\x00")):
        return f"it lists {shown(name)}, which is a path rather than a file name"
    if not name.endswith(".safetensors") or name.startswith("."):
        return f"it lists {shown(name)}, not a .safetensors file name"
    try:
        too_long = len(name.encode()) > 255
    except UnicodeEncodeError:
        too_long = True
    return f"it lists {shown(name)}, which no file can be named" if too_long else None


def scan_checkpoint(model_dir: Path, args: ModelArgs) -> dict[str, TensorInfo]:
    """Headers of all files, checked against the config: nothing missing, extra or mis-shaped."""
    found: dict[str, TensorInfo] = {}
    for path in checkpoint_files(model_dir):
        for name, info in read_header(path).items():
            if name in found:
                raise ModelLoadError(
                    f"{name} appears in both {found[name].file.name} and {path.name}."
                )
            found[name] = info
    expected = expected_tensors(args)
    for name, (shape, dtype) in expected.items():
        if name not in found:
            raise ModelLoadError(f"The checkpoint lacks {name}: the download is incomplete.")
        info = found[name]
        if info.dtype != dtype:
            raise ModelLoadError(
                f"{info.file.name}: {name} has dtype {info.dtype}; expected {dtype}. This is not "
                "gpt-oss in its original format: use the official checkpoint."
            )
        if info.shape != shape:
            raise ModelLoadError(
                f"{info.file.name}: {name}: expected {dtype}{list(shape)}, "
                f"got {info.dtype}{list(info.shape)}."
            )
    extra = sorted(set(found) - set(expected))
    if extra:
        raise ModelLoadError(
            f"{found[extra[0]].file.name}: {extra[0]} is not part of this model's config "
            f"({len(extra)} unexpected tensors)."
        )
    return found
