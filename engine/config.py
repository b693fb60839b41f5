"""The model's hyper-parameters, read from a Hugging Face `config.json`."""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelLoadError

SLIDING = "sliding_attention"
FULL = "full_attention"

# Keys without which the architecture is not defined; everything else has the real model's value.
_REQUIRED = (
    "num_hidden_layers",
    "num_local_experts",
    "vocab_size",
    "hidden_size",
    "intermediate_size",
    "head_dim",
    "num_attention_heads",
    "num_key_value_heads",
    "sliding_window",
    "rope_theta",
    "rope_scaling",
    "swiglu_limit",
)


@dataclass(frozen=True)
class YarnScaling:
    """YaRN's "NTK-by-parts" RoPE extension (https://arxiv.org/abs/2309.00071)."""

    factor: float = 32.0
    beta_fast: float = 32.0
    beta_slow: float = 1.0
    original_max_position_embeddings: int = 4096
    # gpt-oss ships truncate=false: the correction range is not rounded to whole dimensions.
    truncate: bool = False

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> YarnScaling:
        kind = d.get("rope_type", d.get("type", "yarn"))
        if kind != "yarn":
            raise ModelLoadError(f"Unsupported RoPE scaling {kind!r}: gpt-oss uses YaRN.")
        return cls(
            factor=float(d.get("factor", cls.factor)),
            beta_fast=float(d.get("beta_fast", cls.beta_fast)),
            beta_slow=float(d.get("beta_slow", cls.beta_slow)),
            original_max_position_embeddings=int(
                d.get("original_max_position_embeddings", cls.original_max_position_embeddings)
            ),
            truncate=bool(d.get("truncate", cls.truncate)),
        )


@dataclass(frozen=True)
class ModelArgs:
    """gpt-oss hyper-parameters. Defaults are gpt-oss-20b's."""

    num_hidden_layers: int = 24
    num_local_experts: int = 32
    num_experts_per_tok: int = 4
    vocab_size: int = 201088
    hidden_size: int = 2880
    intermediate_size: int = 2880
    head_dim: int = 64
    num_attention_heads: int = 64
    num_key_value_heads: int = 8
    sliding_window: int = 128
    rope_theta: float = 150000.0
    rope_scaling: YarnScaling | None = field(default_factory=YarnScaling)
    swiglu_limit: float = 7.0
    rms_norm_eps: float = 1e-5
    layer_types: tuple[str, ...] = ()
    eos_token_ids: tuple[int, ...] = (200002,)
    model_type: str = "gpt_oss"

    def __post_init__(self) -> None:
        if not self.layer_types:
            # gpt-oss alternates, starting with a sliding-window layer.
            types = tuple(SLIDING if i % 2 == 0 else FULL for i in range(self.num_hidden_layers))
            object.__setattr__(self, "layer_types", types)
        self._validate()

    def _validate(self) -> None:
        problems = []
        if len(self.layer_types) != self.num_hidden_layers:
            problems.append(
                f"layer_types has {len(self.layer_types)} entries for "
                f"{self.num_hidden_layers} layers"
            )
        if any(t not in (SLIDING, FULL) for t in self.layer_types):
            problems.append(f"unknown entries in layer_types {sorted(set(self.layer_types))}")
        for name in ("hidden_size", "intermediate_size"):
            if getattr(self, name) % 32:
                problems.append(f"{name} must be a multiple of the MXFP4 block size 32")
        if self.num_attention_heads % max(self.num_key_value_heads, 1):
            problems.append("num_attention_heads must be a multiple of num_key_value_heads")
        if not 0 < self.num_experts_per_tok <= self.num_local_experts:
            problems.append("num_experts_per_tok must be between 1 and num_local_experts")
        if self.head_dim % 2:
            problems.append("head_dim must be even for RoPE")
        if problems:
            raise ModelLoadError("The model's config.json is inconsistent: " + "; ".join(problems))

    @property
    def q_heads_per_kv_head(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def attention_scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = "config.json") -> ModelArgs:
        """Builds the arguments from a parsed config.json, ignoring keys the model does not use."""
        model_type = d.get("model_type")
        if model_type != "gpt_oss":
            raise ModelLoadError(
                f"{source} describes a {model_type!r} model; OSS Desk runs gpt-oss models only."
            )
        missing = [k for k in _REQUIRED if k not in d]
        if "num_experts_per_tok" not in d and "experts_per_token" not in d:
            missing.append("num_experts_per_tok")
        if missing:
            raise ModelLoadError(f"{source} lacks required fields: {', '.join(missing)}.")
        quant = d.get("quantization_config") or {}
        if quant.get("quant_method") != "mxfp4":
            raise ModelLoadError(
                f"{source} does not describe MXFP4 experts (quantization_config.quant_method is "
                f"{quant.get('quant_method')!r}); use the official checkpoint."
            )
        if d.get("tie_word_embeddings", False):
            raise ModelLoadError(f"{source}: tied embeddings are not a gpt-oss layout.")
        scaling = d["rope_scaling"]
        eos = d.get("eos_token_id", 200002)
        try:
            return cls(
                num_hidden_layers=int(d["num_hidden_layers"]),
                num_local_experts=int(d["num_local_experts"]),
                num_experts_per_tok=int(d.get("num_experts_per_tok") or d["experts_per_token"]),
                vocab_size=int(d["vocab_size"]),
                hidden_size=int(d["hidden_size"]),
                intermediate_size=int(d["intermediate_size"]),
                head_dim=int(d["head_dim"]),
                num_attention_heads=int(d["num_attention_heads"]),
                num_key_value_heads=int(d["num_key_value_heads"]),
                sliding_window=int(d["sliding_window"]),
                rope_theta=float(d["rope_theta"]),
                rope_scaling=YarnScaling.from_dict(scaling) if scaling else None,
                swiglu_limit=float(d["swiglu_limit"]),
                rms_norm_eps=float(d.get("rms_norm_eps", 1e-5)),
                layer_types=tuple(d.get("layer_types") or ()),
                eos_token_ids=tuple(eos) if isinstance(eos, list) else (int(eos),),
            )
        except (TypeError, ValueError) as e:
            raise ModelLoadError(f"{source} has a field of the wrong type: {e}") from e

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> ModelArgs:
        path = Path(model_dir) / "config.json"
        try:
            text = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ModelLoadError(f"{path} is missing: this is not a model folder.") from None
        except OSError as e:
            raise ModelLoadError(f"{path} cannot be read: {e.strerror}.") from e
        try:
            data = json.loads(text)
        except json.JSONDecodeError as e:
            raise ModelLoadError(f"{path} is not valid JSON (line {e.lineno}).") from e
        if not isinstance(data, dict):
            raise ModelLoadError(f"{path} does not hold a JSON object.")
        return cls.from_dict(data, source=str(path))
