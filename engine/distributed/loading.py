"""Loading one rank's slice of a gpt-oss checkpoint: only its bytes are read from the files.

A slice along axis 0 (a range of heads' rows, a range of experts) is one contiguous byte range of
the tensor and is read as such; o_proj is sliced along its columns, one short run per row, through
a memory map that touches only those runs' pages. No rank ever holds a whole tensor it does not
need, and each layer is evaluated before the next is read, as engine/weights.py does.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
from mlx.utils import tree_unflatten

from engine.checkpoint import DTYPE_BYTES, TensorInfo, scan_checkpoint
from engine.config import ModelArgs
from engine.distributed.plan import ShardPlan, Slice
from engine.errors import ModelLoadError
from engine.model import Model
from engine.weights import to_model_layout

_NUMPY: dict[str, np.dtype[Any]] = {"BF16": np.dtype("<u2"), "U8": np.dtype("u1")}


def read_part(info: TensorInfo, part: Slice | None) -> np.ndarray:
    """The bytes of `info` within `part` (all of it for None), shaped, without reading the rest."""
    dtype = _NUMPY[info.dtype]
    if part is None:
        part = Slice(0, 0, info.shape[0])
    if part.axis == 0:
        row = math.prod(info.shape[1:]) * DTYPE_BYTES[info.dtype]
        start, count = info.start + part.start * row, (part.stop - part.start) * row
        with open(info.file, "rb") as f:
            f.seek(start)
            data = f.read(count)
        if len(data) != count:
            raise ModelLoadError(f"{info.file.name} is truncated inside {info.name}.")
        shape = (part.stop - part.start, *info.shape[1:])
        return np.frombuffer(data, dtype=dtype).reshape(shape)
    rows = np.memmap(info.file, dtype=dtype, mode="r", offset=info.start, shape=info.shape)
    index = [slice(None)] * len(info.shape)
    index[part.axis] = slice(part.start, part.stop)
    out = np.ascontiguousarray(rows[tuple(index)])
    del rows
    return out


def _as_mlx(info: TensorInfo, raw: np.ndarray) -> mx.array:
    value = mx.array(raw)
    return value.view(mx.bfloat16) if info.dtype == "BF16" else value


def load_rank(
    model_dir: Path, args: ModelArgs, plan: ShardPlan, dtype: mx.Dtype, model: Model
) -> None:
    """Fills `model` (built for this rank) with the rank's slices, one layer at a time."""
    infos = scan_checkpoint(model_dir, args)
    wanted = plan.shapes(args)
    by_layer: dict[str, list[str]] = {}
    for name in infos:
        if name in wanted:
            by_layer.setdefault(_layer_key(name), []).append(name)
    for names in by_layer.values():
        items: list[tuple[str, mx.array]] = []
        for name in names:
            info = infos[name]
            if plan.zeroed(name):
                items.append((name, mx.zeros(wanted[name][0], dtype=dtype)))
                continue
            raw = read_part(info, plan.slice_of(name))
            items += to_model_layout(name, _as_mlx(info, raw), dtype)
        model.update(tree_unflatten(items))
        mx.eval([v for _, v in items])


def _layer_key(name: str) -> str:
    parts = name.split(".")
    return ".".join(parts[:3]) if name.startswith("model.layers.") else name
