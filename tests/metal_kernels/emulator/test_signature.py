"""The emulator generates the same kernel text as MLX.

MLX refuses to *call* a Metal kernel without Metal, except while tracing ``mx.export_function``:
then it builds the kernel text and prints it with ``verbose=True``. That output is the oracle.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np
import pytest

from metal_kernels.emulator import is_available, metal_kernel, unavailable_reason
from metal_kernels.emulator.signature import ATTRIBUTES

pytestmark = pytest.mark.skipif(not is_available(), reason=unavailable_reason() or "")

ALL_ATTRIBUTES_SOURCE = "\n".join(f"// {attr}" for attr, _ in ATTRIBUTES)

CASES: dict[str, dict[str, Any]] = {
    "docs_example": dict(
        input_names=["inp"],
        output_names=["out"],
        source="""
            uint elem = thread_position_in_grid.x;
            T tmp = inp[elem];
            out[elem] = metal::exp(tmp);
        """,
        inputs=[mx.zeros((4, 16), mx.float16)],
        output_dtypes=[mx.float16],
        template=[("T", mx.float32)],
    ),
    "scalars_constants_shapes_and_template_kinds": dict(
        input_names=["a", "s", "c", "w", "flag"],
        output_names=["out", "out2"],
        header="constant float LUT[2] = {0.0f, 1.0f};\n",
        source="""
            // a_shape a_strides a_ndim s_shape c_strides w_ndim
            uint3 p = thread_position_in_grid + threadgroup_position_in_grid;
            uint q = simdgroup_index_in_threadgroup + thread_index_in_simdgroup;
            uint3 t = threads_per_threadgroup;
        """,
        inputs=[
            mx.zeros((2, 3, 4)),
            2.5,
            mx.array([1, 2, 3], mx.int32),
            mx.zeros((16,), mx.uint8),
            True,
        ],
        output_dtypes=[mx.float32, mx.bfloat16],
        template=[("T", mx.bfloat16), ("N", 4), ("B", False), ("C", True)],
    ),
    "atomic_outputs_and_every_attribute": dict(
        input_names=["x"],
        output_names=["hist", "total"],
        atomic_outputs=True,
        source=ALL_ATTRIBUTES_SOURCE,
        inputs=[mx.zeros((9,), mx.uint32)],
        output_dtypes=[mx.int32, mx.float32],
        template=[],
    ),
    "shape_buffers_without_attributes": dict(  # MLX closes the head early: reproduced
        input_names=["x"],
        output_names=["o1", "o2"],
        source="o1[0] = x_shape[0];",
        inputs=[mx.zeros((10,), mx.int64)],
        output_dtypes=[mx.uint16, mx.int8],
        template=[],
    ),
    "more_dtypes": dict(
        input_names=["b", "i8", "i16", "u16", "u64", "h"],
        output_names=["out"],
        source="out[thread_position_in_grid.x] = 0;",
        inputs=[
            mx.zeros((8,), mx.bool_),
            mx.zeros((8,), mx.int8),
            mx.zeros((8,), mx.int16),
            mx.zeros((7,), mx.uint16),
            mx.zeros((), mx.uint64),
            mx.zeros((8,), mx.float16),
        ],
        output_dtypes=[mx.bool_],
        template=[("T", mx.uint8)],
    ),
}


def _mlx_generated_source(
    capfd: pytest.CaptureFixture[str], path: Path, case: dict[str, Any]
) -> str:
    kernel: Any = mx.fast.metal_kernel(
        name="probe",
        input_names=case["input_names"],
        output_names=case["output_names"],
        source=case["source"],
        header=case.get("header", ""),
        atomic_outputs=case.get("atomic_outputs", False),
    )
    inputs: Sequence[Any] = case["inputs"]
    arrays = [x for x in inputs if isinstance(x, mx.array)]

    def launch(*args: mx.array) -> list[mx.array]:
        it = iter(args)
        return kernel(
            inputs=[next(it) if isinstance(x, mx.array) else x for x in inputs],
            template=case["template"] or None,
            grid=(1, 1, 1),
            threadgroup=(1, 1, 1),
            output_shapes=[(1,)] * len(case["output_names"]),
            output_dtypes=case["output_dtypes"],
            verbose=True,
        )

    capfd.readouterr()
    mx.export_function(str(path), launch, *arrays)
    printed = capfd.readouterr().out
    match = re.search(r"Generated source code for `probe`:\n```\n(.*)\n```\n", printed, re.S)
    assert match, printed
    return match.group(1)


@pytest.mark.parametrize("case_name", list(CASES))
def test_generated_source_matches_mlx(
    case_name: str, capfd: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    case = CASES[case_name]
    expected = _mlx_generated_source(capfd, tmp_path / "probe.mlxfn", case)
    kernel = metal_kernel(
        name="probe",
        input_names=case["input_names"],
        output_names=case["output_names"],
        source=case["source"],
        header=case.get("header", ""),
        atomic_outputs=case.get("atomic_outputs", False),
    )
    ours = kernel.generated_source(
        inputs=case["inputs"], output_dtypes=case["output_dtypes"], template=case["template"]
    )
    assert ours == expected


def test_docs_example_signature_by_hand() -> None:
    kernel = metal_kernel(
        name="myexp",
        input_names=["inp"],
        output_names=["out"],
        source=CASES["docs_example"]["source"],
    )
    text = kernel.generated_source(
        inputs=[np.zeros(64, np.float16)], output_dtypes=[np.float16], template=[("T", np.float32)]
    )
    assert text.startswith(
        "template <typename T>\n"
        "[[kernel]] void custom_kernel_myexp__float_float16_t_float16_t(\n"
        "  const device float16_t* inp [[buffer(0)]],\n"
        "  device float16_t* out [[buffer(1)]],\n"
        "  uint3 thread_position_in_grid [[thread_position_in_grid]]) {\n"
    )
    assert text.endswith(
        '\ntemplate [[host_name("custom_kernel_myexp__float_float16_t_float16_t")]] [[kernel]] '
        "decltype(custom_kernel_myexp__float_float16_t_float16_t<float>) "
        "custom_kernel_myexp__float_float16_t_float16_t<float>;\n"
    )


def test_verbose_prints_what_mlx_prints(capsys: pytest.CaptureFixture[str]) -> None:
    kernel = metal_kernel(
        name="myexp",
        input_names=["inp"],
        output_names=["out"],
        source=CASES["docs_example"]["source"],
    )
    x = np.linspace(-1, 1, 64, dtype=np.float16)
    args: dict[str, Any] = dict(
        inputs=[x], output_dtypes=[np.float16], template=[("T", np.float32)]
    )
    (out,) = kernel(
        **args, grid=(64, 1, 1), threadgroup=(32, 1, 1), output_shapes=[x.shape], verbose=True
    )
    printed = capsys.readouterr().out
    assert (
        printed
        == f"Generated source code for `myexp`:\n```\n{kernel.generated_source(**args)}\n```\n"
    )
    np.testing.assert_allclose(out, np.exp(x.astype(np.float32)), rtol=1e-3)


def test_invalid_arguments_raise_like_mlx() -> None:
    with pytest.raises(ValueError, match="Must specify at least one output"):
        metal_kernel(name="k", input_names=["x"], output_names=[], source="")
    with pytest.raises(ValueError, match="Unknown compile option `opt`"):
        metal_kernel(
            name="k", input_names=[], output_names=["o"], source="", compile_options={"opt": "x"}
        )
    kernel = metal_kernel(name="k", input_names=["x"], output_names=["o"], source="")
    with pytest.raises(ValueError, match="Expected `inputs` to have size 1 but got size 2"):
        kernel.generated_source(inputs=[1, 2], output_dtypes=[np.float32])
    with pytest.raises(ValueError, match="Invalid template argument"):
        kernel.generated_source(inputs=[1], output_dtypes=[np.float32], template=[("T", "x")])
    with pytest.raises(ValueError, match="Thread group size"):
        kernel(
            inputs=[np.zeros(4, np.float32)],
            output_shapes=[(4,)],
            output_dtypes=[np.float32],
            grid=(4096, 1, 1),
            threadgroup=(2048, 1, 1),
        )
