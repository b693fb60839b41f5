"""Loading a checkpoint: the happy paths and every way a download can be broken."""

from __future__ import annotations

import json
import os
import re
import shutil
import struct
import time
from pathlib import Path

import numpy as np
import pytest

from engine import ModelArgs, ModelLoadError, load_model
from engine.checkpoint import (
    INDEX_FILE,
    MAX_HEADER_BYTES,
    MAX_SHARDS,
    checkpoint_files,
    expected_tensors,
    read_header,
    scan_checkpoint,
)
from engine.testing.synthetic import read_safetensors, tiny_config, write_checkpoint
from tests.conftest import CheckpointFactory, param_bytes


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def test_sharded_and_single_file_load_the_same_model(make_checkpoint: CheckpointFactory) -> None:
    single = make_checkpoint(seed=9)
    sharded = make_checkpoint(seed=9, num_shards=3)
    assert len(checkpoint_files(sharded)) == 3
    ids = [1, 2, 3, 4, 5]
    np.testing.assert_array_equal(load_model(single).logits(ids), load_model(sharded).logits(ids))


def test_experts_stay_as_the_checkpoint_bytes(tiny_checkpoint: Path) -> None:
    model = load_model(tiny_checkpoint)
    experts = model._model.model.layers[1].mlp.experts
    raw = read_safetensors(tiny_checkpoint / "model.safetensors")
    blocks = raw["model.layers.1.mlp.experts.gate_up_proj_blocks"]
    ours = np.array(experts.gate_up_proj_blocks)
    assert ours.dtype == np.uint32 and ours.shape == (*blocks.shape[:2], blocks.shape[2] * 4)
    assert ours.tobytes() == blocks.tobytes()
    scales = np.array(experts.gate_up_proj_scales)
    assert scales.dtype == np.uint8
    assert scales.tobytes() == raw["model.layers.1.mlp.experts.gate_up_proj_scales"].tobytes()


def test_load_reports_progress_to_the_total(tiny_checkpoint: Path) -> None:
    seen: list[tuple[int, int]] = []
    load_model(tiny_checkpoint, on_progress=lambda done, total: seen.append((done, total)))
    assert seen and seen[-1][0] == seen[-1][1] == (
        tiny_checkpoint / "model.safetensors"
    ).stat().st_size - _header_size(tiny_checkpoint / "model.safetensors")
    assert [d for d, _ in seen] == sorted(d for d, _ in seen)


def _header_size(path: Path) -> int:
    with path.open("rb") as f:
        return 8 + int.from_bytes(f.read(8), "little")


def test_truncated_shard_names_file_and_tensor(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = _copy(tiny_checkpoint, tmp_path / "m")
    shard = broken / "model.safetensors"
    with shard.open("r+b") as f:
        f.truncate(shard.stat().st_size - 1000)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is truncated: lm_head\.weight"):
        load_model(broken)


def test_file_cut_inside_its_header(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = _copy(tiny_checkpoint, tmp_path / "m")
    shard = broken / "model.safetensors"
    with shard.open("r+b") as f:
        f.truncate(100)
    with pytest.raises(ModelLoadError, match=r"model\.safetensors is truncated"):
        load_model(broken)


def test_corrupt_header(tiny_checkpoint: Path, tmp_path: Path) -> None:
    broken = _copy(tiny_checkpoint, tmp_path / "m")
    shard = broken / "model.safetensors"
    with shard.open("r+b") as f:
        f.seek(8)
        f.write(b"#garbage")
    with pytest.raises(ModelLoadError, match="corrupt safetensors header"):
        load_model(broken)


def _rewrite(path: Path, config: dict[str, object], drop: str = "", add: str = "") -> Path:
    """A checkpoint whose tensors are those of `config`, minus or plus one tensor."""
    write_checkpoint(path, config, seed=0)
    if not drop and not add:
        return path
    from engine.testing.synthetic import TensorSpec, tensor_chunks, tensor_specs, write_safetensors

    specs = [s for s in tensor_specs(config) if s.name != drop]
    if add:
        specs.append(TensorSpec(add, (4,), "BF16"))
    (path / "model.safetensors").unlink()
    write_safetensors(path / "model.safetensors", specs, lambda s: tensor_chunks(s, 0))
    return path


def test_missing_tensor(tmp_path: Path) -> None:
    path = _rewrite(tmp_path / "m", tiny_config(), drop="model.layers.2.self_attn.sinks")
    with pytest.raises(ModelLoadError, match=r"lacks model\.layers\.2\.self_attn\.sinks"):
        load_model(path)


def test_extra_tensor(tmp_path: Path) -> None:
    path = _rewrite(tmp_path / "m", tiny_config(), add="model.layers.0.mlp.shared_expert.bias")
    with pytest.raises(ModelLoadError, match=r"model\.safetensors: model\.layers\.0\.mlp\.shared"):
        load_model(path)


def test_misshaped_tensor_names_file_tensor_and_shapes(tmp_path: Path) -> None:
    # weights written for 8 experts, config claiming 16
    path = _rewrite(tmp_path / "m", tiny_config())
    config = json.loads((path / "config.json").read_text())
    config["num_local_experts"] = 16
    (path / "config.json").write_text(json.dumps(config))
    with pytest.raises(
        ModelLoadError,
        match=r"model\.safetensors: model\.layers\.0\.mlp\.router\.weight: "
        r"expected BF16\[16, 64\], got BF16\[8, 64\]",
    ):
        load_model(path)


def test_missing_shard_named(make_checkpoint: CheckpointFactory, tmp_path: Path) -> None:
    broken = _copy(make_checkpoint(seed=9, num_shards=3), tmp_path / "m")
    victim = checkpoint_files(broken)[1]
    victim.unlink()
    with pytest.raises(ModelLoadError, match=f"{victim.name} is missing"):
        load_model(broken)


def test_not_a_model_folder(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="not a folder"):
        load_model(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match=r"config\.json is missing"):
        load_model(tmp_path)
    (tmp_path / "config.json").write_text(json.dumps(tiny_config()))
    with pytest.raises(ModelLoadError, match=r"no model\.safetensors"):
        load_model(tmp_path)


def test_expected_tensors_of_20b_add_up_to_the_published_size() -> None:
    from engine.config import ModelArgs
    from engine.testing.synthetic import hf_config

    sizes = {"BF16": 2, "U8": 1}
    table = expected_tensors(ModelArgs.from_dict(hf_config()))
    total = sum(int(np.prod(shape)) * sizes[dtype] for shape, dtype in table.values())
    assert total == 13_761_264_768


def test_loading_holds_no_second_copy_of_the_weights(make_checkpoint: CheckpointFactory) -> None:
    """MLX's peak during load stays near the final size: one layer in flight, never the model."""
    import mlx.core as mx

    path = make_checkpoint(seed=2, num_hidden_layers=8, hidden_size=256, intermediate_size=256,
                           vocab_size=512)  # fmt: skip
    mx.clear_cache()
    mx.reset_peak_memory()
    before = mx.get_active_memory()
    model = load_model(path, dtype="float32")
    final = mx.get_active_memory() - before
    peak = mx.get_peak_memory() - before
    params = param_bytes(model._model)
    assert final == pytest.approx(params, rel=0.05)
    # one layer's bf16 source and fp32 copy may coexist with the loaded model
    assert peak < final * 1.25, (peak, final)


# -- hostile headers and indexes: refused by name, before a tensor byte is read -------------------


def _safetensors(path: Path, header: object, data: bytes = b"", length: int | None = None) -> Path:
    """A safetensors file written byte by byte: `length` overrides the declared header size."""
    raw = header if isinstance(header, bytes) else json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(raw) if length is None else length) + raw + data)
    return path


def _entry(dtype: str, shape: list[int], start: int, end: int) -> dict[str, object]:
    return {"dtype": dtype, "shape": shape, "data_offsets": [start, end]}


def test_a_sound_header_is_read_with_absolute_offsets(tmp_path: Path) -> None:
    header = {"a": _entry("BF16", [2, 2], 0, 8), "b": _entry("F64", [1], 8, 16), "__metadata__": {}}
    path = _safetensors(tmp_path / "x.safetensors", header, bytes(16))
    base = 8 + len(json.dumps(header))
    infos = read_header(path)
    assert set(infos) == {"a", "b"}
    assert (infos["a"].start, infos["a"].end, infos["b"].start) == (base, base + 8, base + 8)
    assert infos["b"].dtype == "F64" and infos["a"].shape == (2, 2)


@pytest.mark.parametrize(
    ("header", "message"),
    [
        ([1, 2, 3], "its safetensors header is a list, not an object"),
        ({"a": 5}, "the header entry of a is 5, not an object"),
        ({"a": _entry("X99", [4], 0, 4)}, "a has the unknown dtype 'X99'"),
        ({"a": _entry("U8", "4", 0, 4)}, "a has the shape '4', not a list of sizes"),  # type: ignore[arg-type]
        ({"a": _entry("U8", [-4], 0, 4)}, "not a list of sizes"),
        ({"a": _entry("U8", [1] * 9, 0, 1)}, "not a list of sizes"),
        ({"a": _entry("U8", [4], -4, 0)}, "not two offsets"),
        ({"a": {"dtype": "U8", "shape": [4], "data_offsets": [0, 4, 8]}}, "not two offsets"),
        ({"a": _entry("U8", [4], 4, 0)}, "a declares a byte range that fits no shape"),
        ({"a": _entry("BF16", [4], 0, 4)}, "a declares a byte range that fits no shape"),
        ({"a": _entry("U8", [4], 8, 12)}, "is truncated: a needs bytes up to"),
        (
            {"a": _entry("U8", [4], 0, 4), "b": _entry("U8", [2], 2, 4)},
            "b and a claim the same bytes",
        ),
        (
            {
                "big": _entry("U8", [8], 0, 8),
                "inner": _entry("U8", [2], 2, 4),
                "c": _entry("U8", [2], 6, 8),
            },
            "claim the same bytes",
        ),
    ],
    ids=[
        "list",
        "entry-number",
        "unknown-dtype",
        "shape-text",
        "shape-negative",
        "shape-9-dims",
        "offset-negative",
        "three-offsets",
        "offsets-reversed",
        "range-too-short",
        "range-past-file",
        "overlap",
        "overlap-nested",
    ],
)
def test_a_lying_header_is_refused_by_name(tmp_path: Path, header: object, message: str) -> None:
    path = _safetensors(tmp_path / "x.safetensors", header, bytes(8))
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        read_header(path)


def test_empty_tensors_may_share_an_offset(tmp_path: Path) -> None:
    header = {
        "a": _entry("U8", [0], 4, 4),
        "b": _entry("U8", [4], 0, 4),
        "c": _entry("U8", [4], 4, 8),
    }
    assert set(read_header(_safetensors(tmp_path / "x.safetensors", header, bytes(8)))) == set(
        header
    )


@pytest.mark.parametrize(
    ("length", "message"),
    [
        (2**63, "its header claims 9,223,372,036,854,775,808 bytes, more than any checkpoint's"),
        (MAX_HEADER_BYTES + 1, "more than any checkpoint's"),
        (1000, "is truncated or not a safetensors file: its header claims 1,000 bytes"),
    ],
)
def test_the_header_length_is_capped_and_checked_against_the_file(
    tmp_path: Path, length: int, message: str
) -> None:
    path = _safetensors(tmp_path / "x.safetensors", {}, bytes(64), length=length)
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        read_header(path)


def test_a_deeply_nested_header_is_a_clear_error(tmp_path: Path) -> None:
    path = _safetensors(tmp_path / "x.safetensors", b"[" * 100_000 + b"]" * 100_000)
    with pytest.raises(ModelLoadError, match="its safetensors header nests too deeply"):
        read_header(path)


@pytest.mark.timeout(30)  # a FIFO opened for reading without O_NONBLOCK blocks for good
def test_a_shard_that_is_a_fifo_or_a_device_is_never_opened(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / "fifo.safetensors")
    (tmp_path / "zero.safetensors").symlink_to("/dev/zero")
    t0 = time.perf_counter()
    for name in ("fifo.safetensors", "zero.safetensors"):
        with pytest.raises(ModelLoadError, match=f"{name} is damaged: it is not an ordinary file"):
            read_header(tmp_path / name)
    assert time.perf_counter() - t0 < 1.0


@pytest.mark.parametrize(("dtype", "itemsize"), [("F64", 8), ("I16", 2), ("BOOL", 1), ("F32", 4)])
def test_a_wrong_dtype_is_named_as_such(tmp_path: Path, dtype: str, itemsize: int) -> None:
    path = write_checkpoint(tmp_path / "m", tiny_config())
    shard = path / "model.safetensors"
    blob = shard.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header, data = json.loads(blob[8 : 8 + n]), blob[8 + n :]
    name = "model.layers.1.self_attn.sinks"  # BF16 (8,)
    header[name] = _entry(dtype, [8], len(data), len(data) + 8 * itemsize)
    _safetensors(shard, header, data + bytes(8 * itemsize))
    with pytest.raises(
        ModelLoadError,
        match=rf"model\.safetensors: {re.escape(name)} has dtype {dtype}; expected BF16\.",
    ):
        scan_checkpoint(path, ModelArgs.from_model_dir(path))


def test_overlapping_tensors_never_load(tmp_path: Path) -> None:
    path = write_checkpoint(tmp_path / "m", tiny_config())
    shard = path / "model.safetensors"
    blob = shard.read_bytes()
    (n,) = struct.unpack("<Q", blob[:8])
    header = json.loads(blob[8 : 8 + n])
    a, b = "model.layers.0.input_layernorm.weight", "model.layers.0.post_attention_layernorm.weight"
    header[b]["data_offsets"] = header[a]["data_offsets"]  # two tensors, one set of weights
    _safetensors(shard, header, blob[8 + n :])
    with pytest.raises(ModelLoadError, match="claim the same bytes"):
        load_model(path)


def _index(folder: Path, weight_map: object) -> Path:
    (folder / "config.json").write_text(json.dumps(tiny_config()))
    (folder / INDEX_FILE).write_text(json.dumps({"weight_map": weight_map}))
    return folder


@pytest.mark.parametrize(
    ("weight_map", "message"),
    [
        (
            {"a": "../../other/model.safetensors"},
            "'../../other/model.safetensors', which is a path",
        ),
        ({"a": "/dev/zero"}, "'/dev/zero', which is a path"),
        ({"a": "sub\\model.safetensors"}, "which is a path"),
        ({"a": "model\x00.safetensors"}, "which is a path"),
        ({"a": "config.json"}, "'config.json', not a .safetensors file name"),
        ({"a": ".safetensors"}, "not a .safetensors file name"),
        ({"a": ["model.safetensors"]}, "it lists a list as a file"),
        ({"a": 5}, "it lists 5 as a file"),
        ({"a": "x" * 300 + ".safetensors"}, "which no file can be named"),
        ({}, "is corrupt: it has no weight_map."),
        ([], "is corrupt: it has no weight_map."),
    ],
)
def test_an_index_listing_anything_but_shard_names_is_refused(
    tmp_path: Path, weight_map: object, message: str
) -> None:
    folder = _index(tmp_path, weight_map)
    with pytest.raises(ModelLoadError, match=re.escape(message)):
        checkpoint_files(folder)


def test_an_index_with_too_many_shards_is_refused(tmp_path: Path) -> None:
    folder = _index(tmp_path, {f"t{i}": f"m{i}.safetensors" for i in range(MAX_SHARDS + 1)})
    with pytest.raises(ModelLoadError, match="lists 1,001 files"):
        checkpoint_files(folder)


@pytest.mark.timeout(30)
def test_an_index_that_is_a_fifo_or_a_device_is_refused(tmp_path: Path) -> None:
    os.mkfifo(tmp_path / INDEX_FILE)
    with pytest.raises(ModelLoadError, match=r"index\.json is a named pipe"):
        checkpoint_files(tmp_path)
    (tmp_path / INDEX_FILE).unlink()
    (tmp_path / INDEX_FILE).symlink_to("/dev/zero")
    with pytest.raises(ModelLoadError, match=r"index\.json is a device"):
        checkpoint_files(tmp_path)
    (tmp_path / INDEX_FILE).unlink()
    (tmp_path / INDEX_FILE).symlink_to(tmp_path / "nowhere")
    with pytest.raises(ModelLoadError, match=r"index\.json in .* is missing"):
        checkpoint_files(tmp_path)
