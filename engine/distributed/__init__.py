"""gpt-oss split across processes with MLX distributed: tensor parallel (plan.py, runtime.py).

Why tensor parallel rather than a pipeline of layers, for gpt-oss-120b (36 layers, hidden 2880,
bf16 activations on a Mac) on N machines:

- Pipeline (rank r holds layers r L/N .. (r+1) L/N - 1): per decoded token N - 1 point-to-point
  sends of one hidden state (2880 x 2 B = 5.6 KiB), but the ranks work one after another, so a
  token takes as long as on one machine that held everything, plus N - 1 hops: more machines buy
  memory, never speed, and the embedding and unembedding (1.1 GiB each) unbalance the ends.
- Tensor parallel (here: rank r holds H/N query heads with the key/value heads they read, and
  E/N experts): 2 all-sums of one hidden state per layer, 72 collectives per token; a ring
  all-reduce moves 2 (N-1)/N x 5.6 KiB per rank each time, 0.4 MiB per token per rank at N = 2.
  Each rank reads only 1/N of the attention and expert bytes per token, so decode can get faster
  as well as fit (two Macs over RDMA: ~98 tok/s against ~80-89 on one, field notes), and memory
  splits evenly but for the unembedding, which rank 0 alone holds (planner: 31.7 and 30.7 GiB
  for 120b on two ranks at 8k tokens).
- Measured here (benchmarks/distributed.py; ring over 127.0.0.1, 2 shared CPU cores): one
  all_sum of 2,880 float32 between 2 ranks takes 0.075 ms at best, 0.115 ms at the median and
  0.19 ms at p90 (0.18-8 ms medians when the machine was busier), so the 72 cost 5-8 ms per
  token on a quiet link; against ~12 ms per 120b token on one Mac that is the price of the
  speed-up, where pipeline's N - 1 hops would cost less latency but give no speed-up at all.
- Experts are split by expert (axis 0 of the MXFP4 tensors: one contiguous byte range per rank)
  rather than by intermediate channel as mlx-lm does: 120b's intermediate size is 90 MXFP4
  blocks, which 4 or 8 machines cannot split without requantizing, while 128 experts split any
  power of two. The costs: a token's 4 experts are not spread evenly (at N = 2 the busier rank
  holds 2.75 of them on average, not 2), and a route to another rank's expert keeps its slot
  with weight 0 so that shapes stay static (engine.experts.local_routes): each rank still runs
  4 expert slots per token, reading at most its own experts' weights plus one.

Use: in every process that `mlx.launch` started (`mlx.launch --hostfile hosts.json --backend
ring -- -m your.module`, hosts.json listing each Mac's IP and a port, e.g.
[["10.0.0.1:5000"], ["10.0.0.2:5000"]]): `group = init_group()`, then `load_distributed(path,
group)`. Rank 0 gets a LoadedModel (its `stop()` releases the others); the other ranks follow
rank 0 until then. `python -m engine.distributed.check MODEL OUT` checks a group end to end.
"""

from typing import TYPE_CHECKING

from engine.lazy import make_lazy

# Lazy (engine/lazy.py): the memory planner imports plan.py, which must not pull in MLX.
_EXPORTS = {
    "DistributedError": "engine.distributed.group",
    "RankLostError": "engine.distributed.group",
    "Watchdog": "engine.distributed.group",
    "init_group": "engine.distributed.group",
    "ShardPlan": "engine.distributed.plan",
    "split_problem": "engine.distributed.plan",
    "DistributedLoadedModel": "engine.distributed.runtime",
    "RankModel": "engine.distributed.runtime",
    "load_distributed": "engine.distributed.runtime",
    "load_rank_model": "engine.distributed.runtime",
}
__all__ = [
    "DistributedError",
    "DistributedLoadedModel",
    "RankLostError",
    "RankModel",
    "ShardPlan",
    "Watchdog",
    "init_group",
    "load_distributed",
    "load_rank_model",
    "split_problem",
]

if TYPE_CHECKING:
    from engine.distributed.group import DistributedError, RankLostError, Watchdog, init_group
    from engine.distributed.plan import ShardPlan, split_problem
    from engine.distributed.runtime import (
        DistributedLoadedModel,
        RankModel,
        load_distributed,
        load_rank_model,
    )

make_lazy(__name__, _EXPORTS)
