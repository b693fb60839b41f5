"""A distributed run that reports on itself: run it in every process of a group.

    mlx.launch -n 2 --backend ring -- -m engine.distributed.check MODEL OUT --prompt-ids 1,2,3

Rank 0 writes OUT/logits.npy (the prompt's logits), OUT/tokens.json (a greedy generation),
OUT/rewound.json (greedy tokens after a cache cut back into the prompt, as regenerating does) and
each rank OUT/rank<r>.json (its peak MLX memory against its planned weight bytes). With --fail,
rank 0 kills (SIGKILL) or freezes (SIGSTOP) another rank after some generated tokens, to show
what a lost Mac does to a run; OUT/error.json then holds the error rank 0 reported.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import time
from collections.abc import Sequence
from pathlib import Path

import mlx.core as mx
import numpy as np
from mlx.utils import tree_flatten

from engine.cache import LayerCache, trim_to
from engine.config import ModelArgs
from engine.distributed.group import (
    DEFAULT_CONNECT_TIMEOUT,
    DEFAULT_STEP_TIMEOUT,
    DistributedError,
    init_group,
)
from engine.distributed.runtime import load_rank_model
from engine.generate import Finished, Token
from engine.inference import LoadedModel
from engine.sampling import SamplingSettings

_SIGNALS = {"kill": signal.SIGKILL, "stop": signal.SIGSTOP}
REWOUND_TAIL = (7, 8, 9)


def _all_pids(group: mx.distributed.Group) -> list[int]:
    mine = np.zeros(group.size(), dtype=np.int32)
    mine[group.rank()] = os.getpid()
    pids = mx.distributed.all_sum(mx.array(mine), group=group)
    return [int(p) for p in np.array(pids)]


def _greedy(model: LoadedModel, ids: list[int], cache: list[LayerCache], n: int) -> list[int]:
    events = model.generate(
        ids, settings=SamplingSettings(temperature=0), max_tokens=n, cache=cache
    )
    return [e.id for e in events if isinstance(e, Token)]


def _rewound(model: LoadedModel, prompt: list[int]) -> list[int]:
    """What a chat does on "regenerate" or an edited message: the cache is cut back into the
    prompt and continued with other tokens, which the other ranks must mirror. Greedy tokens
    after `prompt + REWOUND_TAIL`, reached through that rewind."""
    cache = model.new_cache(sliding_slack=64)
    _greedy(model, prompt, cache, 6)
    trim_to(cache, len(prompt) - 3)
    return _greedy(model, prompt[-3:] + list(REWOUND_TAIL), cache, 6)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    parser.add_argument("--prompt-ids", default="1,2,3,4,5")
    parser.add_argument("--tokens", type=int, default=8, help="greedy tokens to generate")
    parser.add_argument("--dtype", default="float32")
    parser.add_argument("--timeout", type=float, default=DEFAULT_STEP_TIMEOUT)
    parser.add_argument("--connect-timeout", type=float, default=DEFAULT_CONNECT_TIMEOUT)
    parser.add_argument("--fail", choices=sorted(_SIGNALS))
    parser.add_argument("--fail-rank", type=int, default=1)
    parser.add_argument("--fail-after", type=int, default=2, help="tokens before the failure")
    args = parser.parse_args(argv)
    prompt = [int(t) for t in args.prompt_ids.split(",")]

    group = init_group(connect_timeout=args.connect_timeout)
    rank = group.rank()
    pids = _all_pids(group)
    args.out.mkdir(parents=True, exist_ok=True)
    if rank == 0:
        (args.out / "pids.json").write_text(json.dumps(pids))
    mx.reset_peak_memory()
    part = load_rank_model(args.model, group, dtype=args.dtype, step_timeout=args.timeout)
    load_peak = mx.get_peak_memory()
    speed: dict[str, float] = {}
    if part.loaded is None:
        passes = part.follow()
    else:
        passes = 0
        loaded = part.loaded
        np.save(args.out / "logits.npy", loaded.logits(prompt))
        tokens: list[int] = []
        try:
            events = loaded.generate(
                prompt, settings=SamplingSettings(temperature=0), max_tokens=args.tokens
            )
            for event in events:
                if isinstance(event, Finished):
                    speed = {
                        "prefill_tokens_per_s": event.stats.prefill_tokens_per_s,
                        "decode_tokens_per_s": event.stats.decode_tokens_per_s,
                    }
                elif isinstance(event, Token):
                    tokens.append(event.id)
                    if args.fail and len(tokens) == args.fail_after:
                        (args.out / "failed_at.json").write_text(json.dumps(time.time()))
                        os.kill(pids[args.fail_rank], _SIGNALS[args.fail])
        except DistributedError as e:
            report = {"type": type(e).__name__, "message": str(e), "time": time.time()}
            (args.out / "error.json").write_text(json.dumps(report))
            return 1
        (args.out / "tokens.json").write_text(json.dumps(tokens))
        (args.out / "rewound.json").write_text(json.dumps(_rewound(loaded, prompt)))
        part.stop()
        print(f"{group.size()} processes: greedy tokens {tokens}; results in {args.out}")
    model_args = ModelArgs.from_model_dir(args.model)
    weights: list[tuple[str, mx.array]] = tree_flatten(part.model.parameters())  # type: ignore[assignment]
    record = {
        "rank": rank,
        "size": group.size(),
        "planned_weight_bytes": part.plan.weight_bytes(model_args, args.dtype),
        "weight_bytes": sum(v.nbytes for _, v in weights),
        "load_peak_bytes": load_peak,
        "peak_bytes": mx.get_peak_memory(),
        "follower_passes": passes,
        **speed,
    }
    (args.out / f"rank{rank}.json").write_text(json.dumps(record))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
