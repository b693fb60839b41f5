"""Strict loading of a Hugging Face gpt-oss checkpoint into the model, experts kept as MXFP4 bytes.

Every tensor's name, shape and dtype is checked against the config before a byte is read, and each
safetensors file's header is checked against the file's size (and read only from a regular file,
with its length capped), so a truncated download, a wrong model or a crafted file fails with a
message that names the file and the tensor.
"""

from __future__ import annotations

import json
import math
import os
import stat
import struct
from collections.abc import Callable, Collection, Iterable, Mapping
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path
from typing import Protocol

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_unflatten

from engine.config import ModelArgs, read_json_file, shown
from engine.errors import ModelLoadError

FP4_VALUES = (
    0.0,
    0.5,
    1.0,
    1.5,
    2.0,
    3.0,
    4.0,
    6.0,
    -0.0,
    -0.5,
    -1.0,
    -1.5,
    -2.0,
    -3.0,
    -4.0,
    -6.0,
)
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


class ConvertedStore(Protocol):
    """Where tensors converted at load are kept between loads (engine.memory.conversion_cache)."""

    def load(self, name: str) -> list[tuple[str, mx.array]] | None: ...

    def store(self, name: str, items: list[tuple[str, mx.array]]) -> None: ...

    def commit(self) -> None: ...


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


def to_model_layout(name: str, value: mx.array, dtype: mx.Dtype) -> list[tuple[str, mx.array]]:
    """The one transform loading needs: MXFP4 bytes as MLX's uint32 words, the rest in `dtype`
    (tensors the precision profile quantizes go through quantize_streamed instead)."""
    if name.endswith("_blocks"):
        # (E, rows, K/32, 16) u8 -> (E, rows, K/8) u32: the same bytes, already MLX's nibble order.
        return [(name, value.view(mx.uint32).flatten(-2))]
    if name.endswith("_scales"):
        return [(name, value)]
    return [(name, value.astype(dtype))]


def _quantized_items(
    name: str, w: mx.array, scales: mx.array, biases: mx.array
) -> list[tuple[str, mx.array]]:
    base = name.removesuffix(".weight")
    return [(name, w), (base + ".scales", scales), (base + ".biases", biases)]


def quantize_streamed(
    info: TensorInfo, dtype: mx.Dtype, bits: int, group: int, chunk_bytes: int = 64 << 20
) -> list[tuple[str, mx.array]]:
    """Quantizes a (rows, cols) BF16 tensor straight from the file, a block of rows at a time.

    The quantized arrays are allocated once and filled in place, so the full-precision tensor
    (1.1 GiB for gpt-oss's unembedding) never exists in memory: only one block of it does.
    """
    rows, cols = info.shape
    source = np.memmap(info.file, dtype="<u2", mode="r", offset=info.start, shape=(rows, cols))
    w = mx.zeros((rows, cols * bits // 32), dtype=mx.uint32)
    scales = mx.zeros((rows, cols // group), dtype=dtype)
    biases = mx.zeros((rows, cols // group), dtype=dtype)
    step = max(1, chunk_bytes // (2 * cols))
    for r0 in range(0, rows, step):
        r1 = min(rows, r0 + step)
        block = mx.array(np.ascontiguousarray(source[r0:r1])).view(mx.bfloat16).astype(dtype)
        qw, qs, qb = mx.quantize(block, group_size=group, bits=bits)
        w[r0:r1], scales[r0:r1], biases[r0:r1] = qw, qs, qb
        mx.eval(w, scales, biases)  # in place: each array is referenced only here
    del source
    return _quantized_items(info.name, w, scales, biases)


def load_weights(
    model: nn.Module,
    model_dir: Path,
    args: ModelArgs,
    dtype: mx.Dtype,
    on_progress: Callable[[int, int], None] | None = None,
    quantized: Mapping[str, tuple[int, int]] | None = None,
    skip: Collection[str] = (),
    converted_store: ConvertedStore | None = None,
) -> dict[str, TensorInfo]:
    """Reads every tensor but those in `skip` into `model`, one file and one layer at a time.

    Arrays from mx.load are lazy; each layer's tensors are evaluated before the next is touched,
    so memory grows to the model's size and never holds a second copy of it. Returns the checked
    headers (where each tensor lies in which file).
    """
    infos = scan_checkpoint(model_dir, args)
    quantized = quantized or {}
    total = sum(i.end - i.start for n, i in infos.items() if n not in skip)
    done = 0
    by_file: dict[Path, list[str]] = {}
    for name, info in infos.items():
        if name not in skip:
            by_file.setdefault(info.file, []).append(name)
    for path, names in by_file.items():
        try:
            loaded = mx.load(str(path))
        except (RuntimeError, ValueError) as e:
            raise ModelLoadError(f"{path.name} cannot be read as safetensors: {e}") from e
        assert isinstance(loaded, dict)
        arrays: dict[str, mx.array] = loaded
        groups: dict[str, list[str]] = {}
        for name in names:
            groups.setdefault(_layer_key(name), []).append(name)
        for group in groups.values():
            converted: list[tuple[str, mx.array]] = []
            for n in group:
                if n in quantized:
                    items = converted_store.load(n) if converted_store else None
                    if items is None:
                        bits, group_size = quantized[n]
                        items = quantize_streamed(infos[n], dtype, bits, group_size)
                        if converted_store:
                            converted_store.store(n, items)
                    converted += items
                else:
                    # pop: a converted source must not stay alive beside its converted copy
                    converted += to_model_layout(n, arrays.pop(n), dtype)
            model.update(tree_unflatten(converted))
            try:
                mx.eval([v for _, v in converted])
            except RuntimeError as e:
                raise ModelLoadError(f"{path.name}: reading {group[0]} failed: {e}") from e
            done += sum(infos[n].end - infos[n].start for n in group)
            if on_progress is not None:
                on_progress(done, total)
        del arrays, loaded
    if converted_store:
        converted_store.commit()
    return infos


def _layer_key(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:3]) if name.startswith("model.layers.") else name
