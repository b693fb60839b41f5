"""Putting a precision profile into effect: quantized dense layers and a memory-mapped embedding."""

from __future__ import annotations

from pathlib import Path

import mlx.core as mx
import mlx.nn as nn
import numpy as np

from engine.checkpoint import TensorInfo
from engine.memory.profiles import PrecisionProfile

EMBEDDING = "model.embed_tokens.weight"
_ATTENTION = ("q_proj", "k_proj", "v_proj", "o_proj")


class MappedEmbedding:
    """The embedding table read from the checkpoint file on demand, outside MLX's memory.

    Only the rows of the tokens being processed are copied into MLX; the OS pages the file in and
    out as it likes, so the 1.08 GiB table of gpt-oss costs the GPU nothing.
    """

    def __init__(self, info: TensorInfo, dtype: mx.Dtype) -> None:
        if info.dtype != "BF16" or len(info.shape) != 2:
            raise ValueError(f"{info.name}: expected a 2-D BF16 table")
        self._rows = np.memmap(
            info.file, dtype="<u2", mode="r", offset=info.start, shape=info.shape
        )
        self._dtype = dtype
        self.shape = info.shape

    def __call__(self, ids: mx.array) -> mx.array:
        rows = np.asarray(self._rows[np.array(ids, dtype=np.int64)])
        return mx.array(rows).view(mx.bfloat16).astype(self._dtype)

    @property
    def path(self) -> Path:
        return Path(str(self._rows.filename))


def quantized_weights(model: nn.Module, profile: PrecisionProfile) -> dict[str, tuple[int, int]]:
    """Swaps the profile's dense layers for quantized ones; returns weight name -> (bits, group).

    The swap happens before any weight is read, so each layer is quantized as it is loaded and its
    full-precision copy never outlives that step.
    """
    group = profile.group_size
    chosen: dict[str, tuple[int, int]] = {}

    def pick(bits: int | None, wanted: tuple[str, ...]) -> None:
        if bits is None:
            return

        def predicate(path: str, module: nn.Module) -> bool:
            hit = isinstance(module, nn.Linear) and path.endswith(wanted)
            if hit:
                chosen[path + ".weight"] = (bits, group)
            return hit

        nn.quantize(model, group_size=group, bits=bits, class_predicate=predicate)

    pick(profile.attention_bits, tuple(f"self_attn.{p}" for p in _ATTENTION))
    pick(profile.unembedding_bits, ("lm_head",))
    return chosen
