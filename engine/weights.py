"""Strict loading of a Hugging Face gpt-oss checkpoint into the model, experts kept as MXFP4 bytes.

Every tensor's name, shape and dtype is checked against the config before a byte is read
(engine/checkpoint.py reads and checks the headers), so a truncated download, a wrong model or a
crafted file fails with a message that names the file and the tensor.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping
from pathlib import Path
from typing import Protocol

import mlx.core as mx
import mlx.nn as nn
import numpy as np
from mlx.utils import tree_unflatten

from engine.checkpoint import TensorInfo, scan_checkpoint
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


class ConvertedStore(Protocol):
    """Where tensors converted at load are kept between loads (engine.memory.conversion_cache)."""

    def load(self, name: str) -> list[tuple[str, mx.array]] | None: ...

    def store(self, name: str, items: list[tuple[str, mx.array]]) -> None: ...

    def commit(self) -> None: ...


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
