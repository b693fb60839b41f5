"""Convert a Hugging Face-layout gpt-oss checkpoint to the `original/` layout of OpenAI's reference.

The result loads with `gpt_oss.torch.model.Transformer.from_checkpoint(out_dir, device="cpu")`,
which makes the reference implementation a test oracle for our engine. Meant for tiny checkpoints:
every tensor is read into memory.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from engine.testing.synthetic import Dtype, TensorSpec, read_safetensors, write_safetensors

# HF suffix → original suffix within a layer; q, k and v are apart: they become one tensor.
_LAYER_NAMES = {
    "input_layernorm.weight": "attn.norm.scale",
    "self_attn.sinks": "attn.sinks",
    "self_attn.o_proj.weight": "attn.out.weight",
    "self_attn.o_proj.bias": "attn.out.bias",
    "post_attention_layernorm.weight": "mlp.norm.scale",
    "mlp.router.weight": "mlp.gate.weight",
    "mlp.router.bias": "mlp.gate.bias",
    "mlp.experts.gate_up_proj_blocks": "mlp.mlp1_weight.blocks",
    "mlp.experts.gate_up_proj_scales": "mlp.mlp1_weight.scales",
    "mlp.experts.gate_up_proj_bias": "mlp.mlp1_bias",
    "mlp.experts.down_proj_blocks": "mlp.mlp2_weight.blocks",
    "mlp.experts.down_proj_scales": "mlp.mlp2_weight.scales",
    "mlp.experts.down_proj_bias": "mlp.mlp2_bias",
}
_GLOBAL_NAMES = {
    "model.embed_tokens.weight": "embedding.weight",
    "model.norm.weight": "norm.scale",
    "lm_head.weight": "unembedding.weight",
}


def original_config(hf: dict[str, Any]) -> dict[str, Any]:
    """The keys of the reference's `ModelConfig`, from a Hugging Face config.json."""
    rope = hf["rope_scaling"]
    same = (
        "num_hidden_layers", "vocab_size", "hidden_size", "intermediate_size", "swiglu_limit",
        "head_dim", "num_attention_heads", "num_key_value_heads", "sliding_window",
        "initial_context_length",
    )  # fmt: skip
    return {key: hf[key] for key in same} | {
        "num_experts": hf["num_local_experts"],
        "experts_per_token": hf["num_experts_per_tok"],
        "rope_theta": float(hf["rope_theta"]),
        "rope_scaling_factor": float(rope["factor"]),
        "rope_ntk_alpha": float(rope["beta_slow"]),
        "rope_ntk_beta": float(rope["beta_fast"]),
    }


def read_hf_tensors(hf_dir: Path) -> dict[str, np.ndarray]:
    """All raw tensors of a single-file or sharded checkpoint (BF16 as uint16 bits)."""
    index = hf_dir / "model.safetensors.index.json"
    if index.exists():
        files = sorted(set(json.loads(index.read_text())["weight_map"].values()))
    else:
        files = ["model.safetensors"]
    tensors: dict[str, np.ndarray] = {}
    for filename in files:
        tensors |= read_safetensors(hf_dir / filename)
    return tensors


def convert_to_original(hf_dir: str | Path, out_dir: str | Path) -> Path:
    """Write out_dir/config.json and out_dir/model.safetensors with the reference's names."""
    hf_dir, out = Path(hf_dir), Path(out_dir)
    hf = json.loads((hf_dir / "config.json").read_text())
    source = read_hf_tensors(hf_dir)
    used: set[str] = set()

    def take(name: str) -> np.ndarray:
        if name not in source:
            raise KeyError(f"{hf_dir}: tensor {name} is missing")
        used.add(name)
        return source[name]

    tensors = {new: take(old) for old, new in _GLOBAL_NAMES.items()}
    for n in range(hf["num_hidden_layers"]):
        hf_prefix, prefix = f"model.layers.{n}.", f"block.{n}."
        for kind in ("weight", "bias"):
            # Rows Q, then K, then V: the reference splits qkv output by these row ranges.
            parts = [take(f"{hf_prefix}self_attn.{p}_proj.{kind}") for p in "qkv"]
            tensors[f"{prefix}attn.qkv.{kind}"] = np.concatenate(parts, axis=0)
        for old, new in _LAYER_NAMES.items():
            tensors[prefix + new] = take(hf_prefix + old)
    if unused := sorted(set(source) - used):
        raise ValueError(f"{hf_dir}: tensors with no original name: {unused[:5]}")

    out.mkdir(parents=True, exist_ok=True)
    (out / "config.json").write_text(json.dumps(original_config(hf), indent=2) + "\n")
    dtypes: dict[np.dtype[Any], Dtype] = {np.dtype(np.uint16): "BF16", np.dtype(np.uint8): "U8"}
    specs = [TensorSpec(name, t.shape, dtypes[t.dtype]) for name, t in tensors.items()]
    write_safetensors(out / "model.safetensors", specs, lambda spec: [tensors[spec.name]])
    return out
