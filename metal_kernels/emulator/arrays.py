"""Conversions between the caller's values (mx.array, numpy, Python scalars) and kernel buffers.

bfloat16 has no numpy dtype, so its bytes travel as uint16 and become ``mx.bfloat16`` again on the
way out. MLX is imported only when the caller uses it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from .signature import DTYPES, DType


def is_mlx(value: object) -> bool:
    return type(value).__module__.startswith("mlx")


def dtype_of(value: object) -> DType:
    """The DType for an mx.Dtype, a numpy dtype or type, or a dtype name."""
    if isinstance(value, DType):
        return value
    text = str(value)
    if text.startswith("mlx.core."):
        name = text.removeprefix("mlx.core.")
    else:
        try:
            name = np.dtype(value).name  # type: ignore[call-overload]
        except TypeError as e:
            raise ValueError(f"not a dtype: {value!r}") from e
    if name not in DTYPES:
        raise ValueError(f"dtype {name} is not supported by Metal kernels (no double or complex)")
    return DTYPES[name]


@dataclass(frozen=True)
class HostArray:
    """An input as the kernel sees it: ``array`` holds the bytes, ``dtype`` their Metal type."""

    array: np.ndarray
    dtype: DType
    from_mlx: bool


def to_host(value: object) -> HostArray:
    if is_mlx(value):
        import mlx.core as mx

        arr: Any = value
        dtype = dtype_of(arr.dtype)
        data = np.array(arr.view(mx.uint16) if dtype.name == "bfloat16" else arr)
        return HostArray(data, dtype, True)
    # Python scalars become 0-d arrays as in MLX's to_array: bool, int32 or float32.
    if isinstance(value, bool):
        data = np.array(value, np.bool_)
    elif isinstance(value, int):
        data = np.array(value, np.int32)
    elif isinstance(value, float):
        data = np.array(value, np.float32)
    else:
        data = np.asarray(value)
    return HostArray(data, dtype_of(data.dtype), False)


def row_contiguous(host: HostArray) -> HostArray:
    if host.array.flags.c_contiguous:
        return host
    return HostArray(np.ascontiguousarray(host.array), host.dtype, host.from_mlx)


def byte_span(a: np.ndarray) -> tuple[int, int, int]:
    """(address of the lowest byte, number of bytes, offset of element 0) of a strided array."""
    if a.size == 0:
        return a.ctypes.data, 0, 0
    low = high = 0
    for n, stride in zip(a.shape, a.strides, strict=True):
        extent = (n - 1) * stride
        if extent < 0:
            low += extent
        else:
            high += extent
    return a.ctypes.data + low, high - low + a.itemsize, -low


def bfloat16_bits(values: object) -> np.ndarray:
    """float32 -> bfloat16 bit patterns, rounding to nearest even like the GPU."""
    f = np.asarray(values, np.float32)
    u = f.view(np.uint32).astype(np.uint64)
    bits = ((u + 0x7FFF + ((u >> 16) & 1)) >> 16).astype(np.uint16)
    return np.where(np.isnan(f), np.uint16(0x7FC0), bits)


def new_output(shape: Sequence[int], dtype: DType, init_value: float | None) -> np.ndarray:
    """An output: filled with ``init_value``, else poisoned (0xFF bytes: NaN, or all ones)."""
    out = np.empty(tuple(int(d) for d in shape), dtype.storage)
    if init_value is None:
        out.reshape(-1).view(np.uint8)[:] = 0xFF
    elif dtype.name == "bfloat16":
        out[...] = bfloat16_bits(init_value)
    else:
        out[...] = np.array(init_value, np.float32).astype(dtype.storage)
    return out


def to_caller(out: np.ndarray, dtype: DType, as_mlx: bool) -> Any:
    if not as_mlx:
        return out
    import mlx.core as mx

    arr = mx.array(out)
    return arr.view(mx.bfloat16) if dtype.name == "bfloat16" else arr
