"""The memory planner: exact bytes of every part of a loaded model, and whether it fits.

All sizes are computed from the config, the precision profile and the activation dtype with the
same layouts the loader produces (MXFP4 experts as stored, MLX affine quantization with one scale
and one bias per group in the activation dtype, caches allocated in whole steps).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

from engine.config import FULL, ModelArgs
from engine.distributed.plan import ShardPlan, split_problem
from engine.errors import ModelLoadError
from engine.memory.budget import MachineBudget
from engine.memory.profiles import PROFILES, PrecisionProfile

GiB = 2**30
DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# MLX's own bookkeeping, compiled kernels and small temporaries beyond what is listed below.
RUNTIME_OVERHEAD = 64 * 2**20
KV_STEP = 256  # full-attention caches grow in steps of this many tokens (mlx-lm's KVCache.step)
# gpt-oss's context before YaRN: less leaves room for little more than the prompt and one answer.
MIN_USEFUL_CONTEXT = 4096


def dense_bytes(rows: int, cols: int, bits: int | None, dtype_bytes: int, group: int) -> int:
    """A (rows, cols) matrix: plain, or MLX-affine-quantized with a scale and bias per group."""
    if bits is None:
        return rows * cols * dtype_bytes
    return rows * cols * bits // 8 + 2 * rows * (cols // group) * dtype_bytes


def kv_bytes_per_token(args: ModelArgs, dtype_bytes: int, kv_bits: int | None) -> int:
    """Keys plus values of one token in one layer."""
    width = args.num_key_value_heads * args.head_dim
    if kv_bits is None:
        return 2 * width * dtype_bytes
    return 2 * (width * kv_bits // 8 + 2 * (width // 64) * dtype_bytes)


@dataclass(frozen=True)
class MemoryPlan:
    """Bytes per component; `total` is what MLX holds at the peak of a turn."""

    profile: str
    dtype: str
    context: int
    components: dict[str, int] = field(default_factory=dict)

    @property
    def weights(self) -> int:
        return sum(v for k, v in self.components.items() if not k.startswith(("kv", "act", "run")))

    @property
    def total(self) -> int:
        return sum(self.components.values())

    def table(self) -> str:
        rows = [f"{k:<24}{v / GiB:>9.3f} GiB" for k, v in self.components.items()]
        rows.append(f"{'total':<24}{self.total / GiB:>9.3f} GiB")
        return "\n".join(rows)


def weight_components(args: ModelArgs, profile: PrecisionProfile, dtype: str) -> dict[str, int]:
    b = DTYPE_BYTES[dtype]
    D, I, E, L = (
        args.hidden_size,
        args.intermediate_size,
        args.num_local_experts,
        args.num_hidden_layers,
    )
    Hq, Hk = args.num_attention_heads * args.head_dim, args.num_key_value_heads * args.head_dim
    g = profile.group_size
    # MXFP4: half a byte per weight plus one E8M0 byte per 32; expert biases in the dtype
    experts = E * (2 * I * D // 2 + 2 * I * D // 32 + 2 * I * b + D * I // 2 + D * I // 32 + D * b)
    att_bits = profile.attention_bits
    attention = (
        dense_bytes(Hq, D, att_bits, b, g)
        + 2 * dense_bytes(Hk, D, att_bits, b, g)
        + dense_bytes(D, Hq, att_bits, b, g)
        + (Hq + 2 * Hk + D) * b  # biases
        + args.num_attention_heads * b  # sinks
    )
    return {
        "experts": L * experts,
        "attention": L * attention,
        "router": L * (E * D + E) * b,
        "norms": (2 * L + 1) * D * b,
        "embedding": args.vocab_size * D * b if profile.embedding_in_mlx else 0,
        "unembedding": dense_bytes(args.vocab_size, D, profile.unembedding_bits, b, g),
    }


def plan_memory(
    args: ModelArgs,
    profile: PrecisionProfile | str = "full",
    dtype: str = "bfloat16",
    context: int = 8192,
    prefill_chunk: int = 512,
    attention_materialized: bool = False,
) -> MemoryPlan:
    """Everything MLX holds while a `context`-token conversation is running.

    `attention_materialized`: MLX's CPU attention builds the (heads, chunk, context) score matrix;
    the Metal kernel streams it and never does.
    """
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    parts = weight_components(args, prof, dtype)
    parts |= context_components(args, prof, dtype, context, prefill_chunk, attention_materialized)
    return MemoryPlan(prof.name, dtype, context, parts)


def context_components(
    args: ModelArgs,
    prof: PrecisionProfile,
    dtype: str,
    context: int,
    prefill_chunk: int,
    attention_materialized: bool,
) -> dict[str, int]:
    """The KV cache, activations and runtime of a `context`-token conversation."""
    b = DTYPE_BYTES[dtype]
    per_token = kv_bytes_per_token(args, b, prof.kv_bits)
    n_full = sum(t == FULL for t in args.layer_types)
    n_sliding = args.num_hidden_layers - n_full
    allocated = -(-context // KV_STEP) * KV_STEP
    return {
        "kv_full_layers": n_full * allocated * per_token,
        "kv_sliding_layers": (
            n_sliding
            * (args.sliding_window - 1)
            * 2
            * (args.num_key_value_heads * args.head_dim * b)
        ),
        "activations": activation_bytes(
            args, dtype, prefill_chunk, context, attention_materialized
        ),
        "runtime": RUNTIME_OVERHEAD,
    }


def activation_bytes(
    args: ModelArgs, dtype: str, chunk: int, context: int, attention_materialized: bool
) -> int:
    """The largest set of temporaries alive at once while a prefill chunk passes one layer."""
    b = DTYPE_BYTES[dtype]
    k = args.num_experts_per_tok
    hidden = 4 * chunk * args.hidden_size * b  # residual, normed input, attention out, MoE out
    qkv = chunk * (args.num_attention_heads + 2 * args.num_key_value_heads) * args.head_dim * b
    moe = chunk * k * (2 * args.intermediate_size * 2 + args.hidden_size) * b
    scores = chunk * context * args.num_attention_heads * 4 if attention_materialized else 0
    logits = args.vocab_size * 4
    return hidden + qkv + moe + scores + logits


@dataclass(frozen=True)
class Verdict:
    """Whether a model can run on a machine. `fits` is False unless at least
    min(wanted, MIN_USEFUL_CONTEXT) tokens of context fit: a model that loads but holds barely a
    prompt is refused too, and then `message` says how short the memory falls."""

    fits: bool
    profile: str
    max_context: int  # the longest conversation that fits with this profile (0 if none)
    plan: MemoryPlan
    message: str

    def require_fit(self) -> None:
        """Raises ModelLoadError with the verdict's message when the model does not fit."""
        if not self.fits:
            raise ModelLoadError(self.message)


def context_limit(args: ModelArgs) -> int:
    """The longest context the model's positions cover."""
    return args.rope_scaling.context if args.rope_scaling else 4096


def max_context(args: ModelArgs, profile: PrecisionProfile | str, dtype: str, budget: int) -> int:
    """The largest context, in whole cache steps, whose plan stays within `budget` bytes."""
    limit = context_limit(args)
    lo = min(KV_STEP, limit)
    if plan_memory(args, profile, dtype, lo).total > budget:
        return 0
    hi = max(lo, limit // KV_STEP * KV_STEP)
    while lo < hi:  # total grows with context: binary search over cache steps
        mid = (lo + hi + KV_STEP) // (2 * KV_STEP) * KV_STEP
        if plan_memory(args, profile, dtype, mid).total <= budget:
            lo = mid
        else:
            hi = mid - KV_STEP
    return lo


def recommend(
    args: ModelArgs, budget: MachineBudget, dtype: str = "bfloat16", wanted_context: int = 8192
) -> Verdict:
    """The most precise profile that fits `wanted_context`, or the one that fits the most."""
    best: Verdict | None = None
    for name in PROFILES:  # ordered from most to least precise
        plan = plan_memory(args, name, dtype, wanted_context)
        longest = max_context(args, name, dtype, budget.usable)
        if plan.total <= budget.usable:
            return Verdict(True, name, longest, plan, _fits_message(name, plan, budget, longest))
        if best is None or longest > best.max_context:
            best = Verdict(False, name, longest, plan, "")
    assert best is not None
    needed = min(wanted_context, MIN_USEFUL_CONTEXT, context_limit(args))
    usable = f"{budget.usable / GiB:.1f} GiB"
    if best.max_context >= needed:
        message = (
            f"Only {best.max_context:,} tokens of context fit (profile {best.profile!r}); "
            f"{wanted_context:,} would need {best.plan.total / GiB:.1f} GiB of {usable}."
        )
        return Verdict(True, best.profile, best.max_context, best.plan, message)
    # The least any profile needs to hold `needed` tokens: what the user would have to free.
    least = min(plan_memory(args, name, dtype, needed).total for name in PROFILES)
    message = (
        f"This model needs at least {least / GiB:.1f} GiB for {needed:,} tokens of context, but "
        f"this Mac can give it {usable}; it does not fit, even with the smallest settings."
    )
    return Verdict(False, best.profile, best.max_context, best.plan, message)


def _fits_message(name: str, plan: MemoryPlan, budget: MachineBudget, longest: int) -> str:
    return (
        f"Fits with the {PROFILES[name].title!r} profile: {plan.total / GiB:.1f} GiB of "
        f"{budget.usable / GiB:.1f} GiB at {plan.context:,} tokens; up to {longest:,} tokens fit."
    )


def weight_bytes_per_token(
    args: ModelArgs, profile: PrecisionProfile | str = "full", dtype: str = "bfloat16"
) -> int:
    """Weight bytes one decoded token reads: all dense layers, the router, top-k of E experts per
    layer and the unembedding, plus one embedding row. A Mac's decode speed is at most its memory
    bandwidth divided by this."""
    prof = PROFILES[profile] if isinstance(profile, str) else profile
    parts = weight_components(args, prof, dtype)
    active = parts["experts"] * args.num_experts_per_tok // args.num_local_experts
    row = args.hidden_size * DTYPE_BYTES[dtype]
    dense = parts["attention"] + parts["router"] + parts["norms"] + parts["unembedding"]
    return dense + active + row


def _component(name: str) -> str:
    """Which planner component a checkpoint tensor belongs to."""
    if ".mlp.experts." in name:
        return "experts"
    if ".self_attn." in name:
        return "attention"
    if ".mlp.router." in name:
        return "router"
    if name.startswith("model.embed_tokens"):
        return "embedding"
    if name.startswith("lm_head"):
        return "unembedding"
    return "norms"


def plan_distributed(
    args: ModelArgs,
    processes: int,
    dtype: str = "bfloat16",
    context: int = 8192,
    prefill_chunk: int = 512,
    attention_materialized: bool = False,
) -> list[MemoryPlan]:
    """Each rank's plan when the model is split across `processes` equal machines (tensor
    parallel, engine.distributed: heads and experts split, the unembedding on rank 0 only).

    ModelLoadError if the model cannot be split that many ways."""
    b = DTYPE_BYTES[dtype]
    full = PROFILES["full"]  # distributed runs hold every weight as the checkpoint has it
    plans = []
    for rank in range(processes):
        shard = ShardPlan.for_rank(args, rank, processes)
        parts = dict.fromkeys(("experts", "attention", "router", "norms", "embedding"), 0)
        parts["unembedding"] = 0
        for name, (shape, kind) in shard.shapes(args).items():
            parts[_component(name)] += math.prod(shape) * (1 if kind == "U8" else b)
        local = replace(
            args,
            num_attention_heads=shard.q_heads[1] - shard.q_heads[0],
            num_key_value_heads=shard.kv_heads[1] - shard.kv_heads[0],
            num_local_experts=shard.experts[1] - shard.experts[0],
            # a rank runs all top-k slots (other ranks' with weight 0); min() only for the check
            num_experts_per_tok=min(args.num_experts_per_tok, shard.experts[1] - shard.experts[0]),
        )
        parts |= context_components(
            local, full, dtype, context, prefill_chunk, attention_materialized
        )
        plans.append(MemoryPlan(full.name, dtype, context, parts))
    return plans


@dataclass(frozen=True)
class SplitVerdict:
    """How many equal machines a model needs (0: none up to the largest tried)."""

    machines: int
    plans: list[MemoryPlan]  # one per rank of the smallest group that fits (or the largest tried)
    message: str


def recommend_split(
    args: ModelArgs,
    budget: MachineBudget,
    dtype: str = "bfloat16",
    wanted_context: int = 8192,
    max_machines: int = 8,
) -> SplitVerdict:
    """The fewest equal machines (each with `budget`) that hold the model in the 'full' profile at
    `wanted_context` tokens, split as engine.distributed splits it."""
    usable = budget.usable
    tried: list[MemoryPlan] = []
    for n in range(1, max_machines + 1):
        if split_problem(args, n):
            continue
        tried = plan_distributed(args, n, dtype, wanted_context)
        largest = max(p.total for p in tried)
        if largest <= usable:
            where = "one machine" if n == 1 else f"{n} machines"
            return SplitVerdict(
                n,
                tried,
                f"Fits on {where} like this one: {largest / GiB:.1f} GiB on the busiest of "
                f"{usable / GiB:.1f} GiB usable each, at {wanted_context:,} tokens.",
            )
    need = max(p.total for p in tried) if tried else 0
    return SplitVerdict(
        0,
        tried,
        f"Does not fit on up to {max_machines} machines like this one: each would need "
        f"{need / GiB:.1f} GiB of {usable / GiB:.1f} GiB usable. Use machines with more memory.",
    )
