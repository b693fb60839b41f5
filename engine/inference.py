"""The engine's public model object: load a checkpoint, score token ids, generate tokens."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection, Iterator, Sequence
from pathlib import Path

import mlx.core as mx
import numpy as np

from engine.cache import CacheSnapshot, LayerCache, restore_snapshot, take_snapshot
from engine.checkpoint import checkpoint_files
from engine.config import ModelArgs
from engine.errors import ContextOverflowError, ModelLoadError
from engine.expert_backends import choose_backend, choose_by_speed
from engine.generate import DEFAULT_PREFILL_STEP, Decoder, Finished, Token, generate_tokens
from engine.memory.conversion_cache import ConversionCache
from engine.memory.profiles import PrecisionProfile, get_profile
from engine.memory.residency import EMBEDDING, MappedEmbedding, quantized_weights
from engine.model import Model
from engine.sampling import Sampler, SamplingSettings, make_sampler
from engine.weights import load_weights

_DTYPES = {"float32": mx.float32, "bfloat16": mx.bfloat16, "float16": mx.float16}
DecoderFactory = Callable[[Model, Sequence[LayerCache], Sampler], Decoder]


def default_dtype() -> str:
    """bf16 on a GPU, where it halves the bytes read per token; fp32 on the CPU, where MLX's bf16
    kernels are several times slower and fp32 is exact."""
    return "float32" if mx.default_device() == mx.cpu else "bfloat16"


class LoadedModel:
    """A loaded gpt-oss checkpoint. Every mx.array stays inside; callers see ints and numpy."""

    def __init__(
        self,
        model: Model,
        path: Path,
        dtype: str,
        backend: str,
        profile: PrecisionProfile,
        load_s: float,
    ) -> None:
        self._model = model
        self.path = path
        self.dtype = dtype
        self.expert_backend = backend
        self.expert_backend_reason = ""
        self.profile = profile
        self.load_seconds = load_s
        self.processes = 1  # more for a model split across an MLX group (engine.distributed)
        # Set only for a demo folder; None: decoders sample with the sampler they are given.
        self.scripted_decoders: DecoderFactory | None = None

    @property
    def is_demo(self) -> bool:
        """The `make demo` model: tiny random weights, scripted replies, not gpt-oss."""
        return self.scripted_decoders is not None

    @property
    def args(self) -> ModelArgs:
        return self._model.args

    @property
    def max_context(self) -> int:
        scaling = self.args.rope_scaling
        if scaling is None:
            return 4096
        return int(scaling.original_max_position_embeddings * scaling.factor)

    def new_cache(self, sliding_slack: int = 0, capacity: int = 0) -> list[LayerCache]:
        """An empty cache; `capacity` reserves that many tokens of keys and values up front."""
        return self._model.make_cache(sliding_slack, capacity, self.profile.kv_bits)

    # The chat snapshots and restores its cache only through these two, so that a model split
    # across processes (engine.distributed.runtime) can repeat each on every process.
    def snapshot_cache(
        self, cache: Sequence[LayerCache], *, compact: bool = False
    ) -> CacheSnapshot:
        """engine.cache.take_snapshot of a cache made by `new_cache`."""
        return take_snapshot(cache, compact=compact)

    def restore_cache(self, cache: Sequence[LayerCache], snapshot: CacheSnapshot) -> None:
        """engine.cache.restore_snapshot of a snapshot made by `snapshot_cache`."""
        restore_snapshot(cache, snapshot)

    def logits(self, token_ids: Sequence[int]) -> np.ndarray:
        """float32 logits (len(token_ids), vocab) from one full forward pass with no cache."""
        self._check_ids(token_ids)
        out = self._model(mx.array([int(t) for t in token_ids], dtype=mx.uint32)[None])[0]
        return np.array(out.astype(mx.float32))

    def generate(
        self,
        prompt_ids: Sequence[int],
        *,
        settings: SamplingSettings | None = None,
        stop_ids: Collection[int] = (),
        max_tokens: int = 256,
        cancel: threading.Event | None = None,
        cache: Sequence[LayerCache] | None = None,
        prefill_step: int = DEFAULT_PREFILL_STEP,
        on_prefill: Callable[[int, int], None] | None = None,
    ) -> Iterator[Token | Finished]:
        """Generates after `prompt_ids`; with a `cache`, the prompt continues what it holds."""
        self._check_ids(prompt_ids)
        held = cache[0].offset if cache else 0
        if held + len(prompt_ids) + max_tokens > self.max_context:
            raise ContextOverflowError(
                f"The conversation needs {held + len(prompt_ids) + max_tokens:,} tokens but the "
                f"model's context holds {self.max_context:,}."
            )
        return generate_tokens(
            self._model,
            prompt_ids,
            cache if cache is not None else self.new_cache(),
            make_sampler(settings or SamplingSettings()),
            stop_ids=stop_ids,
            max_tokens=max_tokens,
            cancel=cancel,
            prefill_step=prefill_step,
            on_prefill=on_prefill,
        )

    def decoder(self, cache: Sequence[LayerCache], sampler: Sampler) -> Decoder:
        """Step-wise decoding over `cache`, for callers that inject tokens of their own (chat).

        The sampler maps log-probabilities (1, vocab) to a token id (1,); it stays inside the
        engine (engine.sampling.make_sampler, or a scripted one in tests)."""
        if self.scripted_decoders is not None:
            return self.scripted_decoders(self._model, cache, sampler)
        return Decoder(self._model, cache, sampler)

    def _check_ids(self, token_ids: Sequence[int]) -> None:
        if not token_ids:
            raise ValueError("at least one token id is needed")
        bad = [t for t in token_ids if not 0 <= int(t) < self.args.vocab_size]
        if bad:
            raise ValueError(
                f"token id {bad[0]} is outside the vocabulary (0..{self.args.vocab_size - 1})"
            )


def load_model(
    path: str | Path,
    *,
    dtype: str | None = None,
    expert_backend: str | None = None,
    profile: str = "full",
    on_progress: Callable[[int, int], None] | None = None,
    keep_converted: bool = True,
) -> LoadedModel:
    """Loads a Hugging Face gpt-oss checkpoint folder (config.json + safetensors).

    `profile` is a precision profile of engine.memory (full, 16gb, compact): experts always stay
    MXFP4; the profile decides how attention, unembedding, embedding and KV cache are held.
    Weights a profile converts are kept under the user's cache folder (`keep_converted`) and
    reused by later loads of the same files (engine.memory.conversion_cache).
    """
    t0 = time.perf_counter()
    model_dir = Path(path).expanduser()
    if not model_dir.is_dir():
        raise ModelLoadError(f"{model_dir} is not a folder.")
    dtype = dtype or default_dtype()
    if dtype not in _DTYPES:
        raise ValueError(f"dtype must be one of {sorted(_DTYPES)}")
    prof = get_profile(profile)
    args = ModelArgs.from_model_dir(model_dir)
    if prof.kv_bits is not None and args.head_dim % 32:
        raise ModelLoadError(
            f"The {prof.title!r} profile quantizes the KV cache in groups of 32 or 64 values, "
            f"which head_dim {args.head_dim} does not allow; choose the 'full' profile."
        )
    choice = choose_backend(expert_backend)
    model = Model(args, choice.backend)
    quantized = quantized_weights(model, prof)
    skip = () if prof.embedding_in_mlx else (EMBEDDING,)
    if skip:
        model.model.pop("embed_tokens")  # its rows will come from the file: never allocate them
    store = None
    if quantized and keep_converted:
        files = checkpoint_files(model_dir)
        store = ConversionCache(model_dir, files, prof, dtype)
    infos = load_weights(
        model, model_dir, args, _DTYPES[dtype], on_progress, quantized, skip, store
    )
    if skip:
        model.model.embed_tokens = MappedEmbedding(infos[EMBEDDING], _DTYPES[dtype])  # type: ignore[assignment]
    if choice.timed:  # auto on a Mac: time both paths on layer 0's real experts
        choice = choose_by_speed(
            choice, model.model.layers[0].mlp.experts.weights(), args.num_experts_per_tok
        )
        model.set_expert_backend(choice.backend)
    elapsed = time.perf_counter() - t0
    loaded = LoadedModel(model, model_dir, dtype, choice.name, prof, elapsed)
    loaded.expert_backend_reason = choice.reason  # for the app's diagnostics
    # A folder `make demo` wrote (it carries the demo marker) gets scripted replies; no other.
    from engine.testing.demo import demo_decoders_for

    loaded.scripted_decoders = demo_decoders_for(model_dir)
    return loaded
