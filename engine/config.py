"""The model's hyper-parameters, read from a Hugging Face `config.json`.

The folder comes from the user or from a mirror, and the app checks it on the UI thread, so
every value is checked (type, range, consistency) before anything is derived from it, and the
file is read only if it is a small regular file: never a FIFO, a device or a huge file.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from engine.errors import ModelLoadError
from engine.model_files import read_json_file

SLIDING = "sliding_attention"
FULL = "full_attention"
CONFIG_FILE = "config.json"
MAX_CONFIG_BYTES = 1 << 20  # gpt-oss's config.json has about 1.7 KB
MAX_POSITIONS = 1 << 24  # the longest context any config may claim (gpt-oss: 131,072)
REMEDY = "Restore the model's original config.json, or download the model again."

# Generous bounds, far beyond gpt-oss-120b, that keep each per-layer loop and size product small.
INT_LIMITS: dict[str, tuple[int, int]] = {
    "num_hidden_layers": (1, 1024),
    "num_local_experts": (1, 4096),
    "num_experts_per_tok": (1, 4096),
    "vocab_size": (1, 1 << 22),
    "hidden_size": (32, 1 << 16),
    "intermediate_size": (32, 1 << 18),
    "head_dim": (2, 1024),
    "num_attention_heads": (1, 1024),
    "num_key_value_heads": (1, 1024),
    "sliding_window": (1, MAX_POSITIONS),
    "max_position_embeddings": (1, MAX_POSITIONS),
    "original_max_position_embeddings": (1, MAX_POSITIONS),
}
# (exclusive minimum, inclusive maximum); NaN and infinities never pass.
FLOAT_LIMITS: dict[str, tuple[float, float]] = {
    "rope_theta": (1.0, 1e12),  # RoPE divides by log(theta)
    "swiglu_limit": (0.0, 1e6),
    "rms_norm_eps": (0.0, 1.0),
    "factor": (0.0, 1024.0),
    "beta_fast": (0.0, 1e4),
    "beta_slow": (0.0, 1e4),
}
MAX_EOS_IDS = 64
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


def shown(value: object, limit: int = 60) -> str:
    """A JSON value as a message can quote it: short, and never recursing into containers."""
    if isinstance(value, dict):
        return "an object"
    if isinstance(value, list | tuple):
        return "a list"
    try:
        text = repr(value) if isinstance(value, str) else json.dumps(value)
    except (TypeError, ValueError):
        text = f"a {type(value).__name__}"
    return text if len(text) <= limit else text[: limit - 1] + "…"


def invalid(source: str, problem: str) -> ModelLoadError:
    return ModelLoadError(f"{source} is invalid: {problem}. {REMEDY}")


def whole(key: str, value: object, source: str) -> int:
    """`value` if it is an int (a JSON integer, not a float or bool) within INT_LIMITS[key]."""
    lo, hi = INT_LIMITS[key]
    if isinstance(value, int) and not isinstance(value, bool) and lo <= value <= hi:
        return value
    raise invalid(
        source, f"{key} is {shown(value)}, but it must be a whole number from {lo:,} to {hi:,}"
    )


def real(key: str, value: object, source: str) -> float:
    """`value` as a float if it is a finite number within FLOAT_LIMITS[key]."""
    lo, hi = FLOAT_LIMITS[key]
    if isinstance(value, int | float) and not isinstance(value, bool) and lo < value <= hi:
        return float(value)
    raise invalid(
        source, f"{key} is {shown(value)}, but it must be above {lo:g} and at most {hi:g}"
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

    def __post_init__(self) -> None:
        source = "The model's config.json"
        for key in ("factor", "beta_fast", "beta_slow"):
            real(key, getattr(self, key), source)
        whole("original_max_position_embeddings", self.original_max_position_embeddings, source)

    @classmethod
    def from_dict(cls, d: object, source: str = CONFIG_FILE) -> YarnScaling:
        if not isinstance(d, dict):
            raise invalid(
                source,
                f"rope_scaling is {shown(d)}, but it must be an object such as "
                '{"rope_type": "yarn", "factor": 32.0}',
            )
        kind = d.get("rope_type", d.get("type", "yarn"))
        if kind != "yarn":
            raise ModelLoadError(f"Unsupported RoPE scaling {shown(kind)}: gpt-oss uses YaRN.")
        truncate = d.get("truncate", cls.truncate)
        if not isinstance(truncate, bool):
            raise invalid(source, f"rope_scaling.truncate is {shown(truncate)}, not true or false")
        key = "original_max_position_embeddings"
        return cls(
            factor=real("factor", d.get("factor", cls.factor), source),
            beta_fast=real("beta_fast", d.get("beta_fast", cls.beta_fast), source),
            beta_slow=real("beta_slow", d.get("beta_slow", cls.beta_slow), source),
            original_max_position_embeddings=whole(key, d.get(key, 4096), source),
            truncate=truncate,
        )

    @property
    def context(self) -> int:
        """The longest context the scaled positions cover."""
        return int(self.original_max_position_embeddings * self.factor)


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
        # Bounds first: a billion layers must fail here, not after building a billion layer types.
        for key in INT_LIMITS:
            if hasattr(self, key):
                whole(key, getattr(self, key), "The model's config.json")
        for key in ("rope_theta", "swiglu_limit", "rms_norm_eps"):
            real(key, getattr(self, key), "The model's config.json")
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
            unknown = sorted({shown(t) for t in self.layer_types if t not in (SLIDING, FULL)})
            problems.append(f"unknown entries in layer_types {', '.join(unknown[:3])}")
        for name in ("hidden_size", "intermediate_size"):
            if getattr(self, name) % 32:
                problems.append(f"{name} must be a multiple of the MXFP4 block size 32")
        if self.num_attention_heads % self.num_key_value_heads:
            problems.append("num_attention_heads must be a multiple of num_key_value_heads")
        if not 0 < self.num_experts_per_tok <= self.num_local_experts:
            problems.append("num_experts_per_tok must be between 1 and num_local_experts")
        if self.head_dim % 2:
            problems.append("head_dim must be even for RoPE")
        scaling = self.rope_scaling
        if scaling is not None:
            if scaling.beta_fast <= scaling.beta_slow:
                problems.append("rope_scaling.beta_fast must be larger than beta_slow")
            if scaling.context > MAX_POSITIONS:
                problems.append(
                    f"rope_scaling covers {scaling.context:,} positions, "
                    f"more than {MAX_POSITIONS:,}"
                )
        if problems:
            raise ModelLoadError("The model's config.json is inconsistent: " + "; ".join(problems))

    @property
    def q_heads_per_kv_head(self) -> int:
        return self.num_attention_heads // self.num_key_value_heads

    @property
    def attention_scale(self) -> float:
        return 1.0 / math.sqrt(self.head_dim)

    @classmethod
    def from_dict(cls, d: dict[str, Any], source: str = CONFIG_FILE) -> ModelArgs:
        """Builds the arguments from a parsed config.json, ignoring keys the model does not use."""
        model_type = d.get("model_type")
        if model_type != "gpt_oss":
            raise ModelLoadError(
                f"{source} describes a {shown(model_type)} model; "
                "OSS Desk runs gpt-oss models only."
            )
        missing = [k for k in _REQUIRED if k not in d]
        if "num_experts_per_tok" not in d and "experts_per_token" not in d:
            missing.append("num_experts_per_tok")
        if missing:
            raise ModelLoadError(f"{source} lacks required fields: {', '.join(missing)}.")
        quant = d.get("quantization_config") or {}
        method = quant.get("quant_method") if isinstance(quant, dict) else None
        if method != "mxfp4":
            raise ModelLoadError(
                f"{source} does not describe MXFP4 experts (quantization_config.quant_method is "
                f"{shown(method)}); use the official checkpoint."
            )
        if d.get("tie_word_embeddings", False):
            raise ModelLoadError(f"{source}: tied embeddings are not a gpt-oss layout.")

        def i(key: str) -> int:
            return whole(key, d[key], source)

        # HF reads num_experts_per_tok, the reference experts_per_token.
        top_k = "num_experts_per_tok" if "num_experts_per_tok" in d else "experts_per_token"
        if "max_position_embeddings" in d:
            i("max_position_embeddings")
        scaling = d["rope_scaling"]
        return cls(
            num_hidden_layers=i("num_hidden_layers"),
            num_local_experts=i("num_local_experts"),
            num_experts_per_tok=whole("num_experts_per_tok", d[top_k], source),
            vocab_size=i("vocab_size"),
            hidden_size=i("hidden_size"),
            intermediate_size=i("intermediate_size"),
            head_dim=i("head_dim"),
            num_attention_heads=i("num_attention_heads"),
            num_key_value_heads=i("num_key_value_heads"),
            sliding_window=i("sliding_window"),
            rope_theta=real("rope_theta", d["rope_theta"], source),
            rope_scaling=None if scaling is None else YarnScaling.from_dict(scaling, source),
            swiglu_limit=real("swiglu_limit", d["swiglu_limit"], source),
            rms_norm_eps=real("rms_norm_eps", d.get("rms_norm_eps", 1e-5), source),
            layer_types=_layer_types(d.get("layer_types"), i("num_hidden_layers"), source),
            eos_token_ids=_eos_ids(d.get("eos_token_id", 200002), source),
        )

    @classmethod
    def from_model_dir(cls, model_dir: str | Path) -> ModelArgs:
        path = Path(model_dir) / CONFIG_FILE
        try:
            data = read_json_file(path, MAX_CONFIG_BYTES)
        except FileNotFoundError:
            raise ModelLoadError(f"{path} is missing: this is not a model folder.") from None
        if not isinstance(data, dict):
            raise ModelLoadError(f"{path} does not hold a JSON object. {REMEDY}")
        return cls.from_dict(data, source=str(path))


def _layer_types(value: object, layers: int, source: str) -> tuple[str, ...]:
    if value is None or value == []:
        return ()
    if not isinstance(value, list) or not all(isinstance(t, str) for t in value):
        raise invalid(source, f"layer_types is {shown(value)}, not a list of layer names")
    if len(value) != layers:
        raise invalid(source, f"layer_types has {len(value)} entries for {layers} layers")
    return tuple(value)


def _eos_ids(value: object, source: str) -> tuple[int, ...]:
    ids = value if isinstance(value, list) else [value]
    ok = 0 < len(ids) <= MAX_EOS_IDS and all(
        isinstance(i, int) and not isinstance(i, bool) and 0 <= i < 2**31 for i in ids
    )
    if not ok:
        raise invalid(source, f"eos_token_id is {shown(value)}, not a token id or a short list")
    return tuple(ids)
