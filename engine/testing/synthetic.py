"""Synthetic gpt-oss checkpoints in the Hugging Face layout: random weights, real shapes.

Weights are streamed to disk tensor by tensor, in chunks, so even the full 20b shape (12.8 GiB) is
written with bounded memory. Numpy only; no MLX, torch or Qt.
"""

from __future__ import annotations

import argparse
import copy
import json
import math
import struct
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

# E2M1: index = nibble (bit 3 sign, bits 2..1 exponent, bit 0 mantissa).
FP4_VALUES = (
    +0.0, +0.5, +1.0, +1.5, +2.0, +3.0, +4.0, +6.0,
    -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0,
)  # fmt: skip
BYTES_PER_BLOCK = 16
VALUES_PER_BLOCK = 32
E8M0_BIAS = 127
E8M0_NAN = 255

# RMS of a uniformly random FP4 value (≈ 2.93): a random block times 2^e has RMS FP4_RMS · 2^e.
FP4_RMS = math.sqrt(sum(v * v for v in FP4_VALUES) / len(FP4_VALUES))
# Projections that write into the residual stream (o_proj, down_proj) get this gain, so each
# sublayer adds less than the stream already carries and activations stay O(1) over many layers.
OUTPUT_GAIN = 0.5
BIAS_STD = 0.05
NORM_STD = 0.1
# Largest temporary array a tensor is generated in; peak memory is a small multiple of it.
DEFAULT_CHUNK_BYTES = 64 << 20

Dtype = Literal["BF16", "U8"]
_NUMPY_DTYPES: dict[str, np.dtype[Any]] = {"BF16": np.dtype("<u2"), "U8": np.dtype("u1")}
_ITEMSIZE = {"BF16": 2, "U8": 1}
_LAYER_PATTERN = ("sliding_attention", "full_attention")


def dequantize_mxfp4(blocks: np.ndarray, scales: np.ndarray) -> np.ndarray:
    """MXFP4 → float32; the low nibble of each byte is the even element. Scale 255 (E8M0 NaN) → NaN.

    Shapes: blocks (..., nb, 16) uint8, scales (..., nb) uint8 → (..., nb · 32) float32.
    """
    if blocks.shape[-1] != BYTES_PER_BLOCK or blocks.shape[:-1] != scales.shape:
        raise ValueError(f"blocks {blocks.shape} and scales {scales.shape} do not match")
    lut = np.asarray(FP4_VALUES, dtype=np.float32)
    values = np.stack([lut[blocks & 0x0F], lut[blocks >> 4]], axis=-1)  # (..., nb, 16, 2)
    exponent = np.minimum(scales.astype(np.int32), E8M0_NAN - 1) - E8M0_BIAS
    factor = np.where(scales == E8M0_NAN, np.float32(np.nan), np.ldexp(np.float32(1), exponent))
    values = values.reshape(*blocks.shape[:-1], VALUES_PER_BLOCK) * factor[..., None]
    return values.reshape(*blocks.shape[:-2], -1)


def bf16_to_float32(raw: np.ndarray) -> np.ndarray:
    """Raw bfloat16 bits (uint16) → float32, exactly."""
    return (raw.astype(np.uint32) << 16).view(np.float32)


def float32_to_bf16_bits(x: np.ndarray | float | Sequence[float]) -> np.ndarray:
    """float32 → bfloat16 bits (uint16), rounding to nearest even like torch and MLX."""
    x32 = np.ascontiguousarray(x, dtype=np.float32)
    bits = x32.view(np.uint32)
    out = bits >> 16
    out &= 1
    out += 0x7FFF
    out += bits
    out >>= 16
    nan = np.isnan(x32)
    if nan.any():  # rounding could carry a NaN's mantissa into infinity; keep it a quiet NaN
        out[nan] = (bits[nan] >> 16) | 0x0040
    return out.astype(np.uint16)


def hf_config(**overrides: Any) -> dict[str, Any]:
    """A complete Hugging Face config.json for gpt-oss; defaults are the real 20b values."""
    config: dict[str, Any] = {
        "architectures": ["GptOssForCausalLM"],
        "model_type": "gpt_oss",
        "num_hidden_layers": 24,
        "num_local_experts": 32,
        "num_experts_per_tok": 4,
        "experts_per_token": 4,
        "vocab_size": 201088,
        "hidden_size": 2880,
        "intermediate_size": 2880,
        "head_dim": 64,
        "num_attention_heads": 64,
        "num_key_value_heads": 8,
        "sliding_window": 128,
        "rope_theta": 150000,
        "rope_scaling": {
            "rope_type": "yarn",
            "factor": 32.0,
            "beta_fast": 32.0,
            "beta_slow": 1.0,
            "original_max_position_embeddings": 4096,
            "truncate": False,
        },
        "max_position_embeddings": 131072,
        "initial_context_length": 4096,
        "swiglu_limit": 7.0,
        "rms_norm_eps": 1e-5,
        "attention_bias": True,
        "attention_dropout": 0.0,
        "hidden_act": "silu",
        "layer_types": [],
        "eos_token_id": 200002,
        "pad_token_id": 199999,
        "tie_word_embeddings": False,
        "router_aux_loss_coef": 0.9,
        "output_router_logits": False,
        "use_cache": True,
        "torch_dtype": "bfloat16",
        "quantization_config": {
            "quant_method": "mxfp4",
            "modules_to_not_convert": [
                "model.layers.*.self_attn",
                "model.layers.*.mlp.router",
                "model.embed_tokens",
                "lm_head",
            ],
        },
        "transformers_version": "4.55.0",
    }
    # HF reads num_experts_per_tok, the reference experts_per_token: they must never disagree.
    top_k = {
        key: overrides[key]
        for key in ("num_experts_per_tok", "experts_per_token")
        if key in overrides
    }
    if len(set(top_k.values())) > 1:
        raise ValueError(f"num_experts_per_tok and experts_per_token differ: {top_k}")
    for value in top_k.values():
        config["num_experts_per_tok"] = config["experts_per_token"] = value
    config.update({k: v for k, v in overrides.items() if k not in top_k})
    if "layer_types" not in overrides:
        layers = config["num_hidden_layers"]
        config["layer_types"] = [_LAYER_PATTERN[i % 2] for i in range(layers)]
    return copy.deepcopy(config)


def tiny_config(**overrides: Any) -> dict[str, Any]:
    """A few-MB gpt-oss for tests; hidden and intermediate sizes stay multiples of 32 for MXFP4."""
    tiny: dict[str, Any] = {
        "hidden_size": 64,
        "intermediate_size": 64,
        "head_dim": 16,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "num_hidden_layers": 4,
        "num_local_experts": 8,
        "vocab_size": 512,
        "sliding_window": 8,
    }
    return hf_config(**(tiny | overrides))


def small_config(**overrides: Any) -> dict[str, Any]:
    """A benchmark-sized gpt-oss (hidden 512, 8 experts, 4 layers) with the real vocabulary, so
    embedding and unembedding cost what they cost in the real model."""
    small: dict[str, Any] = {
        "hidden_size": 512,
        "intermediate_size": 512,
        "head_dim": 64,
        "num_attention_heads": 8,
        "num_key_value_heads": 2,
        "num_local_experts": 8,
        "num_hidden_layers": 4,
        "vocab_size": 201088,
        "sliding_window": 128,
    }
    return tiny_config(**(small | overrides))


# Treat as read-only; build variations with hf_config(**overrides).
GPT_OSS_20B = hf_config()
GPT_OSS_120B = hf_config(num_hidden_layers=36, num_local_experts=128)


@dataclass(frozen=True)
class TensorSpec:
    name: str
    shape: tuple[int, ...]
    dtype: Dtype

    @property
    def numel(self) -> int:
        return math.prod(self.shape)

    @property
    def nbytes(self) -> int:
        return self.numel * _ITEMSIZE[self.dtype]


def tensor_specs(config: dict[str, Any]) -> list[TensorSpec]:
    """Every tensor of the Hugging Face layout, in the order write_checkpoint writes them."""
    hidden, inter = config["hidden_size"], config["intermediate_size"]
    if hidden % VALUES_PER_BLOCK or inter % VALUES_PER_BLOCK:
        raise ValueError(
            f"hidden_size {hidden} and intermediate_size {inter} must be multiples of 32"
        )
    experts, vocab, head_dim = config["num_local_experts"], config["vocab_size"], config["head_dim"]
    q_width = config["num_attention_heads"] * head_dim
    kv_width = config["num_key_value_heads"] * head_dim

    def bf16(name: str, *shape: int) -> TensorSpec:
        return TensorSpec(name, shape, "BF16")

    def mxfp4(name: str, rows: int, k: int) -> list[TensorSpec]:
        nb = k // VALUES_PER_BLOCK
        return [
            TensorSpec(f"{name}_blocks", (experts, rows, nb, BYTES_PER_BLOCK), "U8"),
            TensorSpec(f"{name}_scales", (experts, rows, nb), "U8"),
            bf16(f"{name}_bias", experts, rows),
        ]

    attention = (
        ("q", q_width, hidden),
        ("k", kv_width, hidden),
        ("v", kv_width, hidden),
        ("o", hidden, q_width),
    )
    specs = [bf16("model.embed_tokens.weight", vocab, hidden)]
    for i in range(config["num_hidden_layers"]):
        p = f"model.layers.{i}."
        specs.append(bf16(p + "input_layernorm.weight", hidden))
        for proj, rows, cols in attention:
            specs.append(bf16(f"{p}self_attn.{proj}_proj.weight", rows, cols))
            specs.append(bf16(f"{p}self_attn.{proj}_proj.bias", rows))
        specs.append(bf16(p + "self_attn.sinks", config["num_attention_heads"]))
        specs.append(bf16(p + "post_attention_layernorm.weight", hidden))
        specs += [
            bf16(p + "mlp.router.weight", experts, hidden),
            bf16(p + "mlp.router.bias", experts),
        ]
        specs += mxfp4(p + "mlp.experts.gate_up_proj", 2 * inter, hidden)
        specs += mxfp4(p + "mlp.experts.down_proj", hidden, inter)
    specs += [bf16("model.norm.weight", hidden), bf16("lm_head.weight", vocab, hidden)]
    return specs


def checkpoint_nbytes(config: dict[str, Any]) -> int:
    """Total tensor bytes (the index's metadata.total_size), excluding safetensors headers."""
    return sum(spec.nbytes for spec in tensor_specs(config))


def write_safetensors(
    path: Path, specs: Sequence[TensorSpec], data: Callable[[TensorSpec], Iterable[np.ndarray]]
) -> None:
    """Write one safetensors file, pulling each tensor's bytes from data(spec) chunk by chunk.

    The file gets its name only when complete: an interrupted run leaves no valid-looking shard.
    """
    header: dict[str, Any] = {}
    offset = 0
    for spec in specs:
        header[spec.name] = {
            "dtype": spec.dtype,
            "shape": list(spec.shape),
            "data_offsets": [offset, offset + spec.nbytes],
        }
        offset += spec.nbytes
    header["__metadata__"] = {"format": "pt"}
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    partial = path.with_name(path.name + ".partial")
    with partial.open("wb") as f:
        f.write(struct.pack("<Q", len(raw)) + raw)
        for spec in specs:
            written = 0
            for chunk in data(spec):
                chunk = np.ascontiguousarray(chunk, dtype=_NUMPY_DTYPES[spec.dtype])
                f.write(chunk.data)
                written += chunk.nbytes
            if written != spec.nbytes:
                raise ValueError(f"{spec.name}: expected {spec.nbytes} bytes, got {written}")
    partial.replace(path)


def read_safetensors(path: Path) -> dict[str, np.ndarray]:
    """Memory-mapped raw tensors of one file: BF16 as uint16 bits, U8 as uint8."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    header.pop("__metadata__", None)
    buffer = np.memmap(path, dtype=np.uint8, mode="r")
    tensors = {}
    for name, info in header.items():
        start, end = (8 + length + o for o in info["data_offsets"])
        dtype = _NUMPY_DTYPES[info["dtype"]]
        tensors[name] = buffer[start:end].view(dtype).reshape(info["shape"])
    return tensors


def _e8m0_mix(target_std: float) -> tuple[int, float]:
    """Exponent e and probability p such that scales of e or e+1 (chosen with p) give target_std.

    A random ±1 jitter between the two exponents around log2(target_std / FP4_RMS), weighted so the
    expected variance FP4_RMS² · E[4^e] equals target_std² exactly.
    """
    exponent = math.floor(math.log2(target_std / FP4_RMS))
    if not 0 <= E8M0_BIAS + exponent < E8M0_NAN - 1:
        raise ValueError(f"expert weight std {target_std} is out of the E8M0 range")
    ratio = (target_std / (FP4_RMS * 2.0**exponent)) ** 2  # in [1, 4)
    return exponent, (ratio - 1) / 3


def _bf16_init(spec: TensorSpec) -> tuple[float, float]:
    """(mean, std) of a BF16 tensor, chosen so a many-layer forward stays finite and non-trivial.

    Matrices get N(0, gain/√fan_in) so projections keep unit-scale activations; embeddings and sinks
    N(0, 1); biases are small; norm gains sit near 1.
    """
    name = spec.name
    if name.endswith(("layernorm.weight", "model.norm.weight")):
        return 1.0, NORM_STD
    if name.endswith(("bias", ".sinks")):
        return 0.0, 1.0 if name.endswith(".sinks") else BIAS_STD
    if name == "model.embed_tokens.weight":
        return 0.0, 1.0
    gain = OUTPUT_GAIN if ".o_proj." in name else 1.0
    return 0.0, gain / math.sqrt(spec.shape[-1])


def _expert_std(spec: TensorSpec) -> float:
    gain = OUTPUT_GAIN if ".down_proj" in spec.name else 1.0
    return gain / math.sqrt(spec.shape[2] * VALUES_PER_BLOCK)


def _spans(total: int, row: int, per_chunk: int) -> Iterator[int]:
    step = max(row, per_chunk // row * row)
    for start in range(0, total, step):
        yield min(step, total - start)


def tensor_chunks(
    spec: TensorSpec, seed: int, chunk_bytes: int = DEFAULT_CHUNK_BYTES
) -> Iterator[np.ndarray]:
    """The tensor's data in whole-row chunks; its bytes depend on (seed, name), not chunk size."""
    rng = np.random.default_rng([seed, zlib.crc32(spec.name.encode())])
    row = spec.shape[-1]
    if spec.name.endswith("_blocks"):  # every byte pattern is a valid pair of FP4 values
        for n in _spans(spec.numel, row, chunk_bytes):
            yield rng.integers(0, 1 << 32, size=n // 4, dtype=np.uint32).view(np.uint8)
    elif spec.name.endswith("_scales"):
        exponent, p_up = _e8m0_mix(_expert_std(spec))
        base = np.uint8(E8M0_BIAS + exponent)
        for n in _spans(spec.numel, row, chunk_bytes // 4):
            yield (rng.random(n, dtype=np.float32) < p_up).astype(np.uint8) + base
    else:
        mean, std = _bf16_init(spec)
        for n in _spans(spec.numel, row, chunk_bytes // 4):
            x = rng.standard_normal(n, dtype=np.float32)
            x *= std
            x += mean
            if mean > 0:  # norm gains must stay positive
                np.maximum(x, 0.5 * mean, out=x)
            yield float32_to_bf16_bits(x)


def _plan_shards(
    specs: Sequence[TensorSpec], num_shards: int, max_shard_bytes: int | None
) -> list[list[TensorSpec]]:
    if max_shard_bytes is not None:
        if num_shards != 1:
            raise ValueError("give num_shards or max_shard_bytes, not both")
        shards: list[list[TensorSpec]] = [[]]
        size = 0
        for spec in specs:
            if shards[-1] and size + spec.nbytes > max_shard_bytes:
                shards.append([])
                size = 0
            shards[-1].append(spec)
            size += spec.nbytes
        return shards
    if not 1 <= num_shards <= len(specs):
        raise ValueError(f"num_shards must be in 1..{len(specs)}, got {num_shards}")
    # Contiguous runs whose sizes approach an even share of what is left; never an empty shard.
    shards, size = [[]], 0
    remaining = sum(spec.nbytes for spec in specs)
    for i, spec in enumerate(specs):
        to_open = num_shards - len(shards)
        target = remaining / (to_open + 1)
        forced = len(specs) - i == to_open
        if shards[-1] and to_open and (forced or size + spec.nbytes / 2 > target):
            shards.append([])
            remaining -= size
            size = 0
        shards[-1].append(spec)
        size += spec.nbytes
    return shards


def write_checkpoint(
    path: str | Path,
    config: dict[str, Any],
    *,
    seed: int = 0,
    num_shards: int = 1,
    max_shard_bytes: int | None = None,
    chunk_bytes: int = DEFAULT_CHUNK_BYTES,
) -> Path:
    """Write config.json and random weights in the Hugging Face layout; returns the directory.

    One shard gives model.safetensors; more give model-0000i-of-0000N.safetensors plus
    model.safetensors.index.json. num_shards splits tensors in order into runs of similar size;
    max_shard_bytes instead fills each shard up to that size (a larger tensor gets a file alone).
    Deterministic in seed, whatever the sharding or chunk size.
    """
    out = Path(path)
    out.mkdir(parents=True, exist_ok=True)
    existing = sorted(out.glob("*.safetensors")) + sorted(out.glob("*.index.json"))
    if existing:
        raise FileExistsError(f"{out} already holds checkpoint files ({existing[0].name})")
    specs = tensor_specs(config)
    shards = _plan_shards(specs, num_shards, max_shard_bytes)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")

    def data(spec: TensorSpec) -> Iterator[np.ndarray]:
        return tensor_chunks(spec, seed, chunk_bytes)

    if len(shards) == 1:
        write_safetensors(out / "model.safetensors", shards[0], data)
        return out
    weight_map = {}
    for i, shard in enumerate(shards):
        filename = f"model-{i + 1:05d}-of-{len(shards):05d}.safetensors"
        write_safetensors(out / filename, shard, data)
        weight_map.update(dict.fromkeys((spec.name for spec in shard), filename))
    index = {"metadata": {"total_size": checkpoint_nbytes(config)}, "weight_map": weight_map}
    (out / "model.safetensors.index.json").write_text(json.dumps(index, indent=2) + "\n")
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description="Write a random-weight gpt-oss checkpoint.")
    parser.add_argument("out_dir", type=Path)
    parser.add_argument("--preset", choices=("tiny", "20b", "120b"), default="tiny")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--shards", type=int, default=1)
    parser.add_argument("--layers", type=int, help="override num_hidden_layers")
    parser.add_argument(
        "--no-tokenizer",
        dest="tokenizer",
        action="store_false",
        help="write only config.json and weights (by default a small tokenizer is written too)",
    )
    args = parser.parse_args(argv)
    # Imported here: the writer itself stays numpy-only; the tokenizer needs tiktoken and regex.
    from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
    from engine.tokenizer import N_VOCAB

    overrides: dict[str, Any] = {} if args.layers is None else {"num_hidden_layers": args.layers}
    if args.tokenizer:
        # The synthetic tokenizer keeps the real special-token ids (up to N_VOCAB - 1), so the
        # embedding needs the real vocabulary size for the model to chat.
        overrides["vocab_size"] = N_VOCAB
    if args.preset == "tiny":
        config = tiny_config(**overrides)
    elif args.preset == "20b":
        config = hf_config(**overrides)
    else:
        config = hf_config(**({"num_hidden_layers": 36, "num_local_experts": 128} | overrides))
    size = checkpoint_nbytes(config)
    print(f"writing {size / 2**30:.2f} GiB to {args.out_dir}")
    write_checkpoint(args.out_dir, config, seed=args.seed, num_shards=args.shards)
    if args.tokenizer:
        write_synthetic_tokenizer(args.out_dir)
        print(f"wrote a synthetic tokenizer (tokenizer.json) to {args.out_dir}")


if __name__ == "__main__":
    main()
