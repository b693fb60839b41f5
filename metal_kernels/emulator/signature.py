"""The kernel text MLX generates around a ``mx.fast.metal_kernel`` body.

A port of ``write_signature``, ``write_template`` and the kernel naming in
``mlx/backend/common/metal_kernel.cpp`` (MLX 0.32.4), checked against MLX's own output in the tests.
MLX decides which parameters exist by substring search in ``source`` (not ``header``), so a comment
mentioning ``x_shape`` adds a buffer, exactly as on the GPU.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

# Inputs with fewer elements are passed in the `constant` address space.
MAX_CONSTANT_ARRAY_SIZE = 8


@dataclass(frozen=True)
class DType:
    """An array dtype as MLX names it (``name``) and spells it in Metal (``msl``).

    ``storage`` is how the bytes travel in numpy: bfloat16 has no numpy type and travels as uint16.
    """

    name: str
    msl: str
    storage: np.dtype


def _dtype(name: str, msl: str, storage: str) -> tuple[str, DType]:
    return name, DType(name, msl, np.dtype(storage))


DTYPES: dict[str, DType] = dict(
    [
        _dtype("bool", "bool", "bool"),
        _dtype("uint8", "uint8_t", "uint8"),
        _dtype("uint16", "uint16_t", "uint16"),
        _dtype("uint32", "uint32_t", "uint32"),
        _dtype("uint64", "uint64_t", "uint64"),
        _dtype("int8", "int8_t", "int8"),
        _dtype("int16", "int16_t", "int16"),
        _dtype("int32", "int32_t", "int32"),
        _dtype("int64", "int64_t", "int64"),
        _dtype("float16", "float16_t", "float16"),
        _dtype("bfloat16", "bfloat16_t", "uint16"),
        _dtype("float32", "float", "float32"),
    ]
)

# Same order as MLX: the order of the kernel parameters.
ATTRIBUTES: tuple[tuple[str, str], ...] = (
    ("dispatch_quadgroups_per_threadgroup", "uint"),
    ("dispatch_simdgroups_per_threadgroup", "uint"),
    ("dispatch_threads_per_threadgroup", "uint3"),
    ("grid_origin", "uint3"),
    ("grid_size", "uint3"),
    ("quadgroup_index_in_threadgroup", "uint"),
    ("quadgroups_per_threadgroup", "uint"),
    ("simdgroup_index_in_threadgroup", "uint"),
    ("simdgroups_per_threadgroup", "uint"),
    ("thread_execution_width", "uint"),
    ("thread_index_in_quadgroup", "uint"),
    ("thread_index_in_simdgroup", "uint"),
    ("thread_index_in_threadgroup", "uint"),
    ("thread_position_in_grid", "uint3"),
    ("thread_position_in_threadgroup", "uint3"),
    ("threadgroup_position_in_grid", "uint3"),
    ("threadgroups_per_grid", "uint3"),
    ("threads_per_grid", "uint3"),
    ("threads_per_simdgroup", "uint"),
    ("threads_per_threadgroup", "uint3"),
)

TemplateValue = bool | int | DType


@dataclass(frozen=True)
class InputInfo:
    """What the signature depends on for one input array."""

    name: str
    dtype: DType
    ndim: int
    size: int

    @property
    def location(self) -> str:
        return "constant" if self.size < MAX_CONSTANT_ARRAY_SIZE else "device"


@dataclass(frozen=True)
class ShapeInfo:
    """Which of ``<name>_shape``, ``_strides`` and ``_ndim`` the source mentions."""

    shape: bool
    strides: bool
    ndim: bool


def shape_infos(input_names: Sequence[str], source: str) -> list[ShapeInfo]:
    return [
        ShapeInfo(f"{n}_shape" in source, f"{n}_strides" in source, f"{n}_ndim" in source)
        for n in input_names
    ]


def attributes_used(source: str) -> list[tuple[str, str]]:
    return [(attr, typ) for attr, typ in ATTRIBUTES if attr in source]


def template_value_text(value: TemplateValue) -> str:
    """A template argument as MLX prints it: bools as 1/0 (an ostream without boolalpha)."""
    if isinstance(value, DType):
        return value.msl
    return str(int(value))


def template_text(template: Sequence[tuple[str, TemplateValue]]) -> str:
    return "<" + ", ".join(template_value_text(v) for _, v in template) + ">"


def kernel_name(
    name: str,
    template: Sequence[tuple[str, TemplateValue]],
    inputs: Sequence[InputInfo],
    output_dtypes: Sequence[DType],
) -> str:
    kname = "custom_kernel_" + name
    if template:
        # MLX replaces <, > and ", " by "_", drops the last character and joins with "_", which
        # gives a double underscore: custom_kernel_myexp__float_4.
        kname += "_" + re.sub(r"<|>|(, )", "_", template_text(template))[:-1]
    for arr in inputs:
        kname += "_" + arr.dtype.msl
        if arr.ndim == 0:
            kname += "s"
        elif arr.size < MAX_CONSTANT_ARRAY_SIZE:
            kname += "c"
    for dtype in output_dtypes:
        kname += "_" + dtype.msl
    return kname


def signature_text(
    func_name: str,
    inputs: Sequence[InputInfo],
    shapes: Sequence[ShapeInfo],
    output_names: Sequence[str],
    output_dtypes: Sequence[DType],
    template: Sequence[tuple[str, TemplateValue]],
    attributes: Sequence[tuple[str, str]],
    atomic_outputs: bool,
) -> str:
    """Template line and function head up to and including ``) {``, as MLX writes them."""
    s = ""
    if template:
        kinds = [
            "bool" if isinstance(v, bool) else "int" if isinstance(v, int) else "typename"
            for _, v in template
        ]
        s += (
            "template <"
            + ", ".join(f"{k} {n}" for k, (n, _) in zip(kinds, template, strict=True))
            + ">\n"
        )
    s += f"[[kernel]] void {func_name}(\n"
    index = 0
    for arr, shape in zip(inputs, shapes, strict=True):
        ref = "&" if arr.ndim == 0 else "*"
        s += f"  const {arr.location} {arr.dtype.msl}{ref} {arr.name} [[buffer({index})]],\n"
        index += 1
        if arr.ndim > 0:
            for used, decl in (
                (shape.shape, f"const constant int* {arr.name}_shape"),
                (shape.strides, f"const constant int64_t* {arr.name}_strides"),
                (shape.ndim, f"const constant int& {arr.name}_ndim"),
            ):
                if used:
                    s += f"  {decl} [[buffer({index})]],\n"
                    index += 1
    attrs = [f"  {typ} {attr} [[{attr}]]" for attr, typ in attributes]
    for name, dtype in zip(output_names, output_dtypes, strict=True):
        typ = f"atomic<{dtype.msl}>" if atomic_outputs else dtype.msl
        s += f"  device {typ}* {name} [[buffer({index})]]"
        # MLX's test: `index` also counts shape buffers, so with shape buffers and no attributes
        # the head closes early and the source is invalid, on the GPU as here.
        last = index >= len(inputs) + len(output_names) - 1
        s += ") {\n" if last and not attrs else ",\n"
        index += 1
    for i, attr in enumerate(attrs):
        s += attr + (",\n" if i < len(attrs) - 1 else ") {\n")
    return s


def instantiation_text(func_name: str, template: Sequence[tuple[str, TemplateValue]]) -> str:
    """The explicit instantiation MLX appends for templated kernels ("" otherwise)."""
    if not template:
        return ""
    spec = func_name + template_text(template)
    return f'\ntemplate [[host_name("{func_name}")]] [[kernel]] decltype({spec}) {spec};\n'


def generated_source(header: str, signature: str, source: str, instantiation: str) -> str:
    """The full library text of the kernel, as ``verbose=True`` prints it."""
    return header + signature + source + "\n}\n" + instantiation
