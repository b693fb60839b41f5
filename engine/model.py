"""gpt-oss as OpenAI's reference computes it (gpt_oss/torch/model.py), written for MLX.

Per token: embedding -> L x [x += Attn(RMSNorm(x)); x += MoE(RMSNorm(x))] -> RMSNorm -> unembedding.
Attention: GQA with biases, YaRN RoPE, a learned per-head sink logit in the softmax, and a
128-token sliding window on the layers marked sliding. MoE: router with bias, top-4, softmax over
the 4 chosen logits, MXFP4 experts with a clamped SwiGLU. Parameter names follow the Hugging Face
checkpoint, so loading is a rename-free mapping.

Tensor parallel (engine/distributed): with a `group` of N processes each one holds H/N query heads
(and their key/value heads) and E/N experts, and the two blocks all-sum their outputs.
"""

from __future__ import annotations

from collections.abc import Sequence

import mlx.core as mx
import mlx.nn as nn

from engine.cache import LayerCache, Mask, make_cache
from engine.config import FULL, SLIDING, ModelArgs
from engine.experts import ExpertBackend, ExpertWeights, local_routes, mlx_experts
from engine.rope import YarnRope

Group = mx.distributed.Group


class AttentionBlock(nn.Module):
    def __init__(self, args: ModelArgs, rope: YarnRope, group: Group | None = None) -> None:
        super().__init__()
        D, H, Hk = args.head_dim, args.num_attention_heads, args.num_key_value_heads
        if group is not None:  # this rank's query heads and the key/value heads they read
            H, Hk = H // group.size(), max(1, Hk // group.size())
        self._group = group
        self.head_dim, self.n_heads, self.n_kv_heads = D, H, Hk
        self.q_proj = nn.Linear(args.hidden_size, H * D, bias=True)
        self.k_proj = nn.Linear(args.hidden_size, Hk * D, bias=True)
        self.v_proj = nn.Linear(args.hidden_size, Hk * D, bias=True)
        self.o_proj = nn.Linear(H * D, args.hidden_size, bias=True)
        self.sinks = mx.zeros((H,))
        self._rope = rope
        # YaRN's concentration multiplies both q and k, i.e. every logit by its square.
        self._scale = args.attention_scale * rope.logit_scale

    def __call__(self, x: mx.array, mask: Mask, cache: LayerCache | None) -> mx.array:
        B, L, _ = x.shape
        D = self.head_dim
        q = self.q_proj(x).reshape(B, L, self.n_heads, D).transpose(0, 2, 1, 3)  # (B, H, L, D)
        k = self.k_proj(x).reshape(B, L, self.n_kv_heads, D).transpose(0, 2, 1, 3)  # (B, Hk, L, D)
        v = self.v_proj(x).reshape(B, L, self.n_kv_heads, D).transpose(0, 2, 1, 3)
        offset = cache.offset if cache is not None else 0
        q, k = self._rope(q, offset), self._rope(k, offset)
        if cache is not None:
            k, v = cache.update_and_fetch(k, v)
        # q-head h reads kv-head h // (H / Hk); the sink is one extra logit with no value.
        out = mx.fast.scaled_dot_product_attention(
            q, k, v, scale=self._scale, mask=mask, sinks=self.sinks.astype(q.dtype)
        )
        out = self.o_proj(out.transpose(0, 2, 1, 3).reshape(B, L, -1))
        return out if self._group is None else mx.distributed.all_sum(out, group=self._group)


class Experts(nn.Module):
    """One layer's experts in the checkpoint's own MXFP4 bytes (see engine.experts)."""

    def __init__(self, args: ModelArgs, backend: ExpertBackend, count: int | None = None) -> None:
        super().__init__()
        E, D, I = count or args.num_local_experts, args.hidden_size, args.intermediate_size
        self.gate_up_proj_blocks = mx.zeros((E, 2 * I, D // 8), dtype=mx.uint32)
        self.gate_up_proj_scales = mx.zeros((E, 2 * I, D // 32), dtype=mx.uint8)
        self.gate_up_proj_bias = mx.zeros((E, 2 * I))
        self.down_proj_blocks = mx.zeros((E, D, I // 8), dtype=mx.uint32)
        self.down_proj_scales = mx.zeros((E, D, I // 32), dtype=mx.uint8)
        self.down_proj_bias = mx.zeros((E, D))
        self._limit = args.swiglu_limit
        self._backend = backend

    def set_backend(self, backend: ExpertBackend) -> None:
        self._backend = backend

    def weights(self) -> ExpertWeights:
        return ExpertWeights(
            self.gate_up_proj_blocks,
            self.gate_up_proj_scales,
            self.gate_up_proj_bias,
            self.down_proj_blocks,
            self.down_proj_scales,
            self.down_proj_bias,
            self._limit,
        )

    def __call__(self, x: mx.array, indices: mx.array, route_weights: mx.array) -> mx.array:
        return self._backend(x, indices, route_weights, self.weights())


class MLPBlock(nn.Module):
    def __init__(self, args: ModelArgs, backend: ExpertBackend, group: Group | None = None) -> None:
        super().__init__()
        self.top_k = args.num_experts_per_tok
        self.router = nn.Linear(args.hidden_size, args.num_local_experts, bias=True)
        count = args.num_local_experts // (group.size() if group is not None else 1)
        self.experts = Experts(args, backend, count)
        self._group = group
        self._experts = (count * group.rank() if group is not None else 0, count)  # first, count

    def __call__(self, x: mx.array) -> mx.array:
        B, L, D = x.shape
        t = x.reshape(B * L, D)
        g = self.router(t)  # (N, E)
        indices = mx.argpartition(-g, kth=self.top_k - 1, axis=-1)[:, : self.top_k]
        # softmax over the chosen experts' logits only
        weights = mx.softmax(mx.take_along_axis(g, indices, axis=-1), axis=-1, precise=True)
        if self._group is not None:  # experts held elsewhere get weight 0 here
            indices, weights = local_routes(indices, weights, *self._experts)
        y = self.experts(t, indices.astype(mx.uint32), weights)
        if self._group is not None:
            y = mx.distributed.all_sum(y, group=self._group)
        return y.reshape(B, L, D)


class TransformerBlock(nn.Module):
    def __init__(
        self, args: ModelArgs, rope: YarnRope, backend: ExpertBackend, group: Group | None = None
    ) -> None:
        super().__init__()
        self.input_layernorm = nn.RMSNorm(args.hidden_size, eps=args.rms_norm_eps)
        self.self_attn = AttentionBlock(args, rope, group)
        self.post_attention_layernorm = nn.RMSNorm(args.hidden_size, eps=args.rms_norm_eps)
        self.mlp = MLPBlock(args, backend, group)

    def __call__(
        self, x: mx.array, mask: Mask, cache: LayerCache | None, last_only: bool = False
    ) -> mx.array:
        x = x + self.self_attn(self.input_layernorm(x), mask, cache)
        if last_only:  # every position's keys and values are cached; only the last goes on
            x = x[:, -1:, :]
        return x + self.mlp(self.post_attention_layernorm(x))


class GptOssModel(nn.Module):
    def __init__(self, args: ModelArgs, backend: ExpertBackend, group: Group | None = None) -> None:
        super().__init__()
        rope = YarnRope(args.head_dim, args.rope_theta, args.rope_scaling)
        self.embed_tokens = nn.Embedding(args.vocab_size, args.hidden_size)
        self.layers = [
            TransformerBlock(args, rope, backend, group) for _ in range(args.num_hidden_layers)
        ]
        self.norm = nn.RMSNorm(args.hidden_size, eps=args.rms_norm_eps)


class Model(nn.Module):
    """The whole network: token ids (B, L) -> logits (B, L, vocab) (or the last position only).

    With a `group`, this process computes its share of every layer (see engine/distributed)."""

    def __init__(
        self, args: ModelArgs, backend: ExpertBackend | None = None, group: Group | None = None
    ) -> None:
        super().__init__()
        self.args = args
        self.model = GptOssModel(args, backend or mlx_experts, group)
        self.lm_head = nn.Linear(args.hidden_size, args.vocab_size, bias=False)

    def __call__(
        self,
        inputs: mx.array,
        cache: Sequence[LayerCache] | None = None,
        last_only: bool = False,
    ) -> mx.array:
        return self.lm_head(self.model.norm(self.hidden_states(inputs, cache, last_only)))

    def hidden_states(
        self,
        inputs: mx.array,
        cache: Sequence[LayerCache] | None = None,
        last_only: bool = False,
    ) -> mx.array:
        """The residual stream after the last layer, before the final norm and unembedding."""
        h = self.model.embed_tokens(inputs).astype(self.dtype)
        L = h.shape[1]
        masks = self._masks(L, cache)
        last = len(self.model.layers) - 1
        for i, layer in enumerate(self.model.layers):
            layer_cache = cache[i] if cache is not None else None
            h = layer(h, masks[self.args.layer_types[i]], layer_cache, last_only and i == last)
        return h

    def _masks(self, L: int, cache: Sequence[LayerCache] | None) -> dict[str, Mask]:
        window = self.args.sliding_window
        masks: dict[str, Mask] = {}
        for kind, win in ((SLIDING, window), (FULL, None)):
            if kind not in self.args.layer_types:
                continue
            i = self.args.layer_types.index(kind)
            if cache is not None:
                masks[kind] = cache[i].make_mask(L, window_size=win, return_array=False)
            elif win is not None and win < L:
                masks[kind] = _window_mask(L, win)
            else:
                masks[kind] = "causal" if L > 1 else None
        return masks

    @property
    def dtype(self) -> mx.Dtype:
        """The activation dtype: that of the (never quantized) final norm."""
        return self.model.norm.weight.dtype

    def make_cache(
        self, sliding_slack: int = 0, capacity: int = 0, kv_bits: int | None = None
    ) -> list[LayerCache]:
        return make_cache(self.args, sliding_slack, capacity, kv_bits)

    def set_expert_backend(self, backend: ExpertBackend) -> None:
        for layer in self.model.layers:
            layer.mlp.experts.set_backend(backend)


def _window_mask(L: int, window: int) -> mx.array:
    """Boolean (L, L): query i sees keys i - window + 1 .. i."""
    q = mx.arange(L)[:, None]
    k = mx.arange(L)[None]
    return (k <= q) & (k > q - window)
