"""Hostile model folders and Hub listings, and a runner that times how each one is refused.

A model folder comes from the user (or a remembered setting) and a listing from whoever answers
at HF_ENDPOINT, so both can hold anything. Each case below turns a valid tiny checkpoint, or the
fake Hub's honest answer, into one such thing, and names a fragment of the error it must get:

    rows = run_all(workdir)     # [Row(case, outcome, seconds, peak_mib), ...]

Peak MiB is the Python heap's high-water mark during the case (tracemalloc), which is where a
runaway config (a billion layers) or a parse of /dev/zero would show.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import struct
import threading
import time
import tracemalloc
from collections.abc import Callable, Collection
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any, Literal, NamedTuple

from engine.checkpoint import scan_checkpoint
from engine.config import ModelArgs
from engine.download import RetryPolicy, download, plan_download
from engine.errors import DownloadError, ModelLoadError
from engine.testing.fake_hub import FakeHub, write_tiny_repo
from engine.testing.synthetic import tiny_config, write_checkpoint
from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer

INDEX = "model.safetensors.index.json"
TENSOR = "model.layers.0.input_layernorm.weight"  # BF16 (64,) in the tiny config
TWIN = "model.layers.0.post_attention_layernorm.weight"  # same shape, same shard
SHARD_1 = "model-00001-of-00002.safetensors"
INVALID_LISTING = "The server's file list for openai/gpt-oss-20b is invalid"
# From .oss-desk/partial/<name>.: up five levels is two above the model folder.
ESCAPE = "/../../../../../"
FAST = RetryPolicy(max_retries=1, wait_s=0.01, stall_timeout_s=2.0, connect_timeout_s=2.0)


@dataclass(frozen=True)
class FolderCase:
    name: str
    expect: str  # a fragment of the ModelLoadError's message
    make: Callable[[Path], None]  # turns a copy of a valid checkpoint into the hostile folder
    # What is hostile: config.json and the index are read by the setup dialog's folder check
    # too, the safetensors headers only when the engine loads.
    level: Literal["config", "index", "header"] = "config"


@dataclass(frozen=True)
class ListingCase:
    name: str
    expect: str  # a fragment of the DownloadError's message
    edit: Callable[[dict[str, Any]], Any]  # FakeHub.tamper: the honest model info -> the served


class Row(NamedTuple):
    case: str
    outcome: str  # "ok: <error>" when refused as expected, else "FAIL: <what happened>"
    seconds: float
    peak_mib: float


# -- model folders --------------------------------------------------------------------------


def write_base(folder: Path) -> Path:
    """The valid tiny checkpoint every folder case starts from: two shards, an index and a
    tokenizer (the setup check wants one)."""
    write_checkpoint(folder, tiny_config(), num_shards=2)
    write_synthetic_tokenizer(folder)
    return folder


def _config(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        edit(config)
        (folder / "config.json").write_text(json.dumps(config))  # NaN and Infinity allowed

    return make


def _text(name: str, text: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / name).write_text(text)

    return make


def _fifo(name: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / name).unlink()
        os.mkfifo(folder / name)

    return make


def _symlink(name: str, target: str) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        (folder / name).unlink()
        (folder / name).symlink_to(target)

    return make


def _weight_map(edit: Callable[[dict[str, Any]], Any]) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        index = json.loads((folder / INDEX).read_text())
        edit(index["weight_map"])
        (folder / INDEX).write_text(json.dumps(index))

    return make


def _header(edit: Callable[[dict[str, Any], bytearray], Any]) -> Callable[[Path], None]:
    """Rewrites the header of the shard holding TENSOR; `edit` changes the header and data in
    place, or returns the raw header bytes to write instead."""

    def make(folder: Path) -> None:
        shard = folder / SHARD_1
        blob = shard.read_bytes()
        (n,) = struct.unpack("<Q", blob[:8])
        header, data = json.loads(blob[8 : 8 + n]), bytearray(blob[8 + n :])
        raw = edit(header, data)
        if raw is None:
            raw = json.dumps(header).encode()
            raw += b" " * (-len(raw) % 8)
        shard.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(data))

    return make


def _length(n: int) -> Callable[[Path], None]:
    def make(folder: Path) -> None:
        with (folder / SHARD_1).open("r+b") as f:
            f.write(struct.pack("<Q", n))

    return make


def _retype(dtype: str, itemsize: int) -> Callable[[Path], None]:
    """TENSOR stored as `dtype` in fresh bytes at the end: a consistent header, a wrong dtype."""

    def edit(header: dict[str, Any], data: bytearray) -> None:
        entry = header[TENSOR]
        count = 1
        for size in entry["shape"]:
            count *= size
        entry["dtype"], entry["data_offsets"] = dtype, [len(data), len(data) + count * itemsize]
        data.extend(bytes(count * itemsize))

    return _header(edit)


def _set(entry: str, key: str, value: Any) -> Callable[[Path], None]:
    return _header(lambda h, _d: h[entry].__setitem__(key, value))


def _overlap(header: dict[str, Any], _data: bytearray) -> None:
    header[TWIN]["data_offsets"] = list(header[TENSOR]["data_offsets"])


def _nested(depth: int) -> str:
    return '{"a": ' + "[" * depth + "]" * depth + "}"


def _billion_layers(config: dict[str, Any]) -> None:
    # Without layer_types the loader derives one entry per layer: a billion of them.
    del config["layer_types"]
    config["num_hidden_layers"] = 1e9


def _cfg(**values: Any) -> Callable[[Path], None]:
    return _config(lambda c: c.update(values))


def _rope(**values: Any) -> Callable[[Path], None]:
    return _config(lambda c: c["rope_scaling"].update(values))


def _map(value: object) -> Callable[[Path], None]:
    return _weight_map(lambda m: m.update({"x": value}))


def _raw_header(raw: bytes) -> Callable[[Path], None]:
    return _header(lambda _h, _d: raw)


_CONFIG_CASES = (
    ("layers-1e9", "num_hidden_layers is 1000000000.0", _config(_billion_layers)),
    ("layers-10^12", "num_hidden_layers is 1000000000000", _cfg(num_hidden_layers=10**12)),
    ("layers-as-text", "num_hidden_layers is '4'", _cfg(num_hidden_layers="4")),
    ("hidden-negative", "hidden_size is -64", _cfg(hidden_size=-64)),
    ("heads-zero", "num_attention_heads is 0", _cfg(num_attention_heads=0)),
    ("kv-heads-zero", "num_key_value_heads is 0", _cfg(num_key_value_heads=0)),
    ("vocab-10^40", "vocab_size is 1" + "0" * 40, _cfg(vocab_size=10**40)),
    ("window-zero", "sliding_window is 0", _cfg(sliding_window=0)),
    ("theta-infinite", "rope_theta is Infinity", _cfg(rope_theta=float("inf"))),
    ("theta-nan", "rope_theta is NaN", _cfg(rope_theta=float("nan"))),
    ("yarn-factor-1e300", "factor is 1e+300", _rope(factor=1e300)),
    ("yarn-factor-negative", "factor is -32.0", _rope(factor=-32.0)),
    ("yarn-betas-equal", "beta_fast must be larger", _rope(beta_fast=1.0)),
    ("rope-scaling-text", "rope_scaling is 'yarn'", _cfg(rope_scaling="yarn")),
    ("top-k-zero", "num_experts_per_tok is 0", _cfg(num_experts_per_tok=0, experts_per_token=0)),
    ("top-k-9-of-8", "num_experts_per_tok must be between", _cfg(num_experts_per_tok=9)),
    ("heads-7-kv-2", "multiple of num_key_value_heads", _cfg(num_attention_heads=7)),
    ("layer-types-text", "layer_types is 'full_attention'", _cfg(layer_types="full_attention")),
    ("eos-object", "eos_token_id is an object", _cfg(eos_token_id={"id": 1})),
    ("quantization-text", "does not describe MXFP4", _cfg(quantization_config="mxfp4")),
    ("config-nested", "nests its JSON too deeply", _text("config.json", _nested(200_000))),
    ("config-list", "does not hold a JSON object", _text("config.json", "[1, 2]")),
    ("config-2MiB", "larger than 1,048,576 bytes", _text("config.json", " " * (2 << 20))),
    ("config-5000-digits", "is not valid JSON", _text("config.json", '{"a": 1' + "0" * 5000 + "}")),
    ("config-fifo", "config.json is a named pipe", _fifo("config.json")),
    ("config-dev-zero", "config.json is a device", _symlink("config.json", "/dev/zero")),
)
_INDEX_CASES = (
    ("index-escape", "is a path rather than a file name", _map("../../a.safetensors")),
    ("index-absolute", "is a path rather than a file name", _map("/dev/zero")),
    ("index-not-text", "it lists a list as a file", _map([1])),
    ("index-nested", "nests its JSON too deeply", _text(INDEX, _nested(200_000))),
    ("index-fifo", f"{INDEX} is a named pipe", _fifo(INDEX)),
    ("index-dev-zero", f"{INDEX} is a device", _symlink(INDEX, "/dev/zero")),
)
_HEADER_CASES = (
    ("header-list", "header is a list", _raw_header(b"[1, 2, 3]     ")),
    ("header-nested", "nests too deeply", _raw_header(_nested(100_000).encode())),
    (
        "header-entry-number",
        f"entry of {TENSOR} is 5",
        _header(lambda h, _d: h.update({TENSOR: 5})),
    ),
    ("header-past-file", "truncated or not a safetensors file", _length(300_000)),
    ("header-2^63", "more than any checkpoint's", _length(2**63)),
    ("lying-shape", "fits no shape", _set(TENSOR, "shape", [64, 64])),
    ("shape-text", "not a list of sizes", _set(TENSOR, "shape", "64")),
    ("negative-offset", "not two offsets", _set(TENSOR, "data_offsets", [-128, 0])),
    ("range-past-file", "is truncated", _set(TENSOR, "data_offsets", [300_000, 300_128])),
    ("unknown-dtype", "unknown dtype 'X99'", _set(TENSOR, "dtype", "X99")),
    ("overlapping-tensors", "claim the same bytes", _header(_overlap)),
    ("dtype-F64", f"{TENSOR} has dtype F64; expected BF16", _retype("F64", 8)),
    ("dtype-I16", f"{TENSOR} has dtype I16; expected BF16", _retype("I16", 2)),
    ("dtype-BOOL", f"{TENSOR} has dtype BOOL; expected BF16", _retype("BOOL", 1)),
    ("shard-fifo", "is not an ordinary file", _fifo(SHARD_1)),
    ("shard-dev-zero", "is not an ordinary file", _symlink(SHARD_1, "/dev/zero")),
)
FOLDER_CASES: tuple[FolderCase, ...] = (
    *(FolderCase(*c, level="config") for c in _CONFIG_CASES),
    *(FolderCase(*c, level="index") for c in _INDEX_CASES),
    *(FolderCase(*c, level="header") for c in _HEADER_CASES),
)


def make_folder(case: FolderCase, base: Path, folder: Path) -> Path:
    """A copy of the valid checkpoint `base` at `folder`, made hostile by `case`."""
    shutil.copytree(base, folder)
    case.make(folder)
    return folder


def check_folder(folder: Path) -> None:
    """Every check load_model makes before it reads a tensor's bytes, in the same order, without
    MLX: the runner calls this on short-lived threads, and MLX wants one thread to own it."""
    scan_checkpoint(folder, ModelArgs.from_model_dir(folder))


# -- Hub listings ---------------------------------------------------------------------------


def _sibling(info: dict[str, Any], name: str) -> dict[str, Any]:
    return next(s for s in info["siblings"] if s["rfilename"] == name)


def _add(name: object, like: str = SHARD_1) -> Callable[[dict[str, Any]], None]:
    def edit(info: dict[str, Any]) -> None:
        info["siblings"].append(_sibling(info, like) | {"rfilename": name})

    return edit


def _lfs(**values: Any) -> Callable[[dict[str, Any]], None]:
    return lambda info: _sibling(info, SHARD_1)["lfs"].update(values)


def _blob(value: Any) -> Callable[[dict[str, Any]], None]:
    return lambda info: _sibling(info, "config.json").update(blobId=value)


LISTING_CASES: tuple[ListingCase, ...] = (
    ListingCase("lfs-hash-escape", INVALID_LISTING, _lfs(sha256=ESCAPE + "0" * 48)),
    ListingCase("blob-hash-escape", INVALID_LISTING, _blob(ESCAPE + "0" * 24)),
    ListingCase("lfs-hash-short", "not a SHA-256 hex digest", _lfs(sha256="abc123")),
    ListingCase("blob-hash-number", "has the hash 12345", _blob(12345)),
    ListingCase("name-nul", "contains a NUL", _add("model-00003\x00-of-00002.safetensors")),
    ListingCase("name-dotdot", "'..' part", _add("../model-00003-of-00002.safetensors")),
    ListingCase("name-dotdot-deep", "'..' part", _add("original/../../../config.json")),
    ListingCase("name-absolute", "is an absolute path", _add("/tmp/model.safetensors")),
    ListingCase("name-backslash", "contains a backslash", _add("model-\\..\\..\\x.safetensors")),
    ListingCase("name-empty", "a file name is empty", _add("")),
    ListingCase("name-dot-part", "'..' part", _add("original/./config.json")),
    ListingCase("name-number", "a file name is 7", _add(7)),
    ListingCase("name-too-long", "is too long", _add("model-" + "x" * 300 + ".safetensors")),
    ListingCase("name-twice", "twice", _add("config.json", like="config.json")),
    ListingCase("size-negative", "has the size -1", _lfs(size=-1)),
    ListingCase("size-text", "has the size '100'", _lfs(size="100")),
    ListingCase("commit-escape", "commit id", lambda info: info.update(sha="../../" + "0" * 34)),
    ListingCase("answer-is-a-list", "malformed", lambda info: [info]),
    ListingCase("sibling-without-name", "malformed", lambda info: info["siblings"].append({})),
)


def fetch_listing(hub: FakeHub, dest: Path) -> None:
    """What the download worker does: plan against the Hub, then fetch what the plan lists."""
    plan = plan_download(dest, endpoint=hub.endpoint, token=False)
    download(plan, lambda _progress: None, threading.Event(), token=False, retry=FAST)


def snapshot(root: Path, skip: Path) -> dict[str, str]:
    """Every path under `root` but those under `skip`, with a digest of each file's bytes."""
    out = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if here == skip or skip in here.parents:
            dirnames.clear()
            continue
        for name in dirnames:
            if here / name != skip:
                out[str((here / name).relative_to(root))] = "dir"
        for name in filenames:
            data = (here / name).read_bytes()
            out[str((here / name).relative_to(root))] = hashlib.sha256(data).hexdigest()
    return out


def listing_sandbox(sandbox: Path) -> tuple[Path, Path]:
    """(dest, victim): the model folder two levels down, and a file where ESCAPE would land."""
    dest = sandbox / "models" / "gpt-oss-20b"
    dest.parent.mkdir(parents=True)
    victim = sandbox / ".part"
    victim.write_bytes(b"a file of the user's, outside the model folder\n")
    return dest, victim


# -- running --------------------------------------------------------------------------------


def measure(
    run: Callable[[], None], expected: type[Exception], expect: str, timeout_s: float
) -> tuple[str, float, float]:
    """(outcome, seconds, peak MiB) of `run`, in a thread so a hang is reported, not suffered."""
    result: list[BaseException | None] = []

    def target() -> None:
        try:
            run()
            result.append(None)
        except BaseException as e:  # reported in the outcome, whatever it is
            result.append(e)

    started = tracemalloc.is_tracing()
    if not started:
        tracemalloc.start()
    tracemalloc.reset_peak()
    t0 = time.perf_counter()
    worker = threading.Thread(target=target, name="hostile-case", daemon=True)
    worker.start()
    worker.join(timeout_s)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1] / 2**20
    if not started:
        tracemalloc.stop()
    if not result:
        return f"FAIL: still running after {timeout_s:.0f} s", seconds, peak
    error = result[0]
    if error is None:
        return "FAIL: accepted", seconds, peak
    text = f"{type(error).__name__}: {error}"
    ok = isinstance(error, expected) and expect in str(error)
    return ("ok: " if ok else "FAIL: ") + text, seconds, peak


def run_all(
    workdir: Path, *, only: Collection[str] | None = None, timeout_s: float = 30.0
) -> list[Row]:
    """Runs every case (or those named in `only`) under `workdir`; one Row per case."""
    rows = []
    base = write_base(workdir / "base")
    for case in FOLDER_CASES:
        if only is None or case.name in only:
            folder = make_folder(case, base, workdir / "folders" / case.name)
            run = partial(check_folder, folder)
            rows.append(Row(case.name, *measure(run, ModelLoadError, case.expect, timeout_s)))
    listings = [c for c in LISTING_CASES if only is None or c.name in only]
    if not listings:
        return rows
    with FakeHub(write_tiny_repo(workdir / "repo")) as hub:
        for listing in listings:
            hub.reset()
            hub.tamper(listing.edit)
            sandbox = workdir / "listings" / listing.name
            dest, _victim = listing_sandbox(sandbox)
            before = snapshot(sandbox, dest)
            fetch = partial(fetch_listing, hub, dest)
            outcome, seconds, peak = measure(fetch, DownloadError, listing.expect, timeout_s)
            changed = sorted(set(before.items()) ^ set(snapshot(sandbox, dest).items()))
            if changed:
                outcome = f"FAIL: changed {changed[0][0]} outside the model folder; " + outcome
            rows.append(Row(listing.name, outcome, seconds, peak))
    return rows
