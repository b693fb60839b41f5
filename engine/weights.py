"""Strict loading of a Hugging Face gpt-oss checkpoint into the model, experts kept as MXFP4 bytes.

Every tensor's name, shape and dtype is checked against the config before a byte is read, and each
safetensors file's header is checked against the file's size, so a truncated download or a wrong
model fails with a message that names the file and the tensor.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_unflatten

from engine.config import ModelArgs
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
_DTYPE_BYTES = {"BF16": 2, "F16": 2, "F32": 4, "U8": 1, "I8": 1, "U32": 4, "I32": 4, "I64": 8}
_MAX_HEADER = 100 * 2**20


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
    """Parses a safetensors header and checks that the file holds every byte it declares."""
    try:
        size = path.stat().st_size
        with path.open("rb") as f:
            head = f.read(8)
            if len(head) < 8:
                raise ModelLoadError(f"{path.name} is truncated: it has no safetensors header.")
            (n,) = struct.unpack("<Q", head)
            if n > min(_MAX_HEADER, size - 8):
                raise ModelLoadError(f"{path.name} is truncated or not a safetensors file.")
            raw = f.read(n)
    except FileNotFoundError:
        raise ModelLoadError(f"{path.name} is missing from {path.parent}.") from None
    except OSError as e:
        raise ModelLoadError(f"{path.name} cannot be read: {e.strerror}.") from e
    try:
        header = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError):
        raise ModelLoadError(f"{path.name} has a corrupt safetensors header.") from None
    base = 8 + n
    tensors: dict[str, TensorInfo] = {}
    for name, meta in header.items():
        if name == "__metadata__":
            continue
        try:
            start, end = (int(o) for o in meta["data_offsets"])
            info = TensorInfo(
                name, tuple(meta["shape"]), meta["dtype"], path, base + start, base + end
            )
        except (KeyError, TypeError, ValueError):
            raise ModelLoadError(f"{path.name}: the header entry of {name} is malformed.") from None
        count = 1
        for s in info.shape:
            count *= s
        if info.end - info.start != count * _DTYPE_BYTES.get(info.dtype, 0):
            raise ModelLoadError(f"{path.name}: {name} declares a byte range that fits no shape.")
        if info.end > size:
            raise ModelLoadError(
                f"{path.name} is truncated: {name} needs bytes up to {info.end:,} but the file "
                f"has {size:,}. Download the file again."
            )
        tensors[name] = info
    return tensors


def checkpoint_files(model_dir: Path) -> list[Path]:
    """The safetensors files of a checkpoint: those in the index, else the single file."""
    index = model_dir / INDEX_FILE
    if index.exists():
        try:
            weight_map = json.loads(index.read_text(encoding="utf-8"))["weight_map"]
        except (json.JSONDecodeError, KeyError, TypeError, UnicodeDecodeError):
            raise ModelLoadError(f"{INDEX_FILE} in {model_dir} is corrupt.") from None
        return [model_dir / f for f in sorted(set(weight_map.values()))]
    if (model_dir / SINGLE_FILE).exists():
        return [model_dir / SINGLE_FILE]
    raise ModelLoadError(f"{model_dir} holds no {SINGLE_FILE} and no {INDEX_FILE}.")


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
        if info.shape != shape or info.dtype != dtype:
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
