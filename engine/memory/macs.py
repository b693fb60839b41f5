"""Which Macs can run a model: one Mac of each memory size, or N equal Macs split with
engine.distributed. Qt-free; the app's model setup shows it, and so does the command line:

    python -m engine.memory.macs ~/models/gpt-oss-120b [--context 8192]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from engine.config import ModelArgs
from engine.distributed.plan import split_problem
from engine.errors import ModelLoadError
from engine.memory.budget import MachineBudget, machine_budget
from engine.memory.planner import (
    GiB,
    MemoryPlan,
    SplitVerdict,
    Verdict,
    plan_distributed,
    recommend,
    recommend_split,
)

# The unified memory sizes Apple Silicon Macs are sold with.
MAC_MEMORY_GB = (8, 16, 24, 32, 36, 48, 64, 96, 128, 192, 256, 512)
# Context the setup plans for: the planner's default, what a chat with a document needs.
SETUP_CONTEXT = 8192


def mac_budget(memory_gb: int) -> MachineBudget:
    """A Mac with `memory_gb` of unified memory. Metal's recommended working set is what owners
    report (2/3 of the memory up to 32 GB, 3/4 above); on this Mac the app asks Metal itself."""
    total = memory_gb * GiB
    working_set = total * 2 // 3 if memory_gb <= 32 else total * 3 // 4
    return MachineBudget(total, total, working_set, reserve=0)


@dataclass(frozen=True)
class MacAnswer:
    """What one size of Mac can do with the model: alone (`single`), or in a group (`split`)."""

    memory_gb: int
    single: Verdict
    split: SplitVerdict


def which_macs(
    args: ModelArgs,
    context: int = SETUP_CONTEXT,
    sizes: Sequence[int] = MAC_MEMORY_GB,
    max_machines: int = 8,
) -> list[MacAnswer]:
    """The planner's answer for every Mac size (bfloat16 activations, as on a Mac's GPU)."""
    answers = []
    for gb in sizes:
        budget = mac_budget(gb)
        single = recommend(args, budget, "bfloat16", context)
        split = recommend_split(args, budget, "bfloat16", context, max_machines)
        answers.append(MacAnswer(gb, single, split))
    return answers


def smallest_groups(
    args: ModelArgs,
    context: int = SETUP_CONTEXT,
    sizes: Sequence[int] = MAC_MEMORY_GB,
    max_machines: int = 8,
) -> list[tuple[int, int]]:
    """(Mac size in GB, machines): for each number of machines, the smallest Mac whose group of
    that many holds the model, most machines first: "two 48 GB, four 32 GB or eight 16 GB"."""
    # recommend_split for each size, with each group's plans computed once (they do not
    # depend on the machine's memory): the setup calls this on the UI thread.
    groups = {
        n: plan_distributed(args, n, "bfloat16", context)
        for n in range(1, max_machines + 1)
        if not split_problem(args, n)
    }
    best: dict[int, int] = {}
    for gb in sorted(sizes):
        usable = mac_budget(gb).usable
        n = next((n for n, plans in groups.items() if max(p.total for p in plans) <= usable), 0)
        if n and n not in best:
            best[n] = gb
        if n == 1:
            break  # bigger Macs hold it alone too
    return [(best[n], n) for n in sorted(best, reverse=True)]


def rank_shares(plans: Sequence[MemoryPlan]) -> str:
    """Each rank's memory in words: rank 0 (the one that serves) first, then the others."""
    if not plans:
        return ""
    first = f"{plans[0].total / GiB:.1f} GiB"
    if len(plans) == 1:
        return f"{first} on the one Mac"
    others = {f"{p.total / GiB:.1f}" for p in plans[1:]}
    if len(others) == 1:
        each = "the other" if len(plans) == 2 else f"each of the other {len(plans) - 1}"
        return f"{first} on the first Mac, {others.pop()} GiB on {each}"
    rest = ", ".join(f"{p.total / GiB:.1f}" for p in plans[1:])
    return f"{first} on the first Mac, then {rest} GiB"


def describe(args: ModelArgs, context: int, budget: MachineBudget | None) -> str:
    """The command line's report: one Mac of each size, the groups, and this machine."""
    lines = [f"At {context:,} tokens of context (bfloat16 on a Mac's GPU):", ""]
    lines.append(f"{'Mac':>7}  {'alone':<34}  split (per rank, GiB)")
    answers = which_macs(args, context)
    for a in answers:
        alone = (
            f"yes, {a.single.profile} profile, {a.single.max_context:,} tokens"
            if a.single.fits
            else "no"
        )
        parts = ", ".join(f"{p.total / GiB:.2f}" for p in a.split.plans)
        n = a.split.machines
        split = f"{n} Mac{'s' if n > 1 else ''}: {parts}" if n else "no (up to 8 Macs)"
        lines.append(f"{a.memory_gb:>4} GB  {alone:<34}  {split}")
    groups = smallest_groups(args, context)
    if groups:
        listed = ", ".join(f"{n} x {gb} GB" for gb, n in groups)
        lines += ["", f"Smallest groups: {listed}."]
    if budget is not None:
        verdict = recommend_split(args, budget, "bfloat16" if budget.gpu_working_set else "float32")
        lines += ["", f"This machine ({budget.usable / GiB:.1f} GiB usable): {verdict.message}"]
        if verdict.machines:
            lines.append("Per rank: " + rank_shares(verdict.plans) + ".")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m engine.memory.macs",
        description="Which Macs can run a gpt-oss model: alone, or split across equal Macs.",
    )
    parser.add_argument("model_dir", type=Path, help="the folder with config.json (weights unread)")
    parser.add_argument("--context", type=int, default=SETUP_CONTEXT, help="tokens of context")
    parser.add_argument(
        "--this-machine", action="store_true", help="also plan with this machine's memory"
    )
    options = parser.parse_args(argv)
    try:
        args = ModelArgs.from_model_dir(options.model_dir.expanduser())
    except ModelLoadError as e:
        print(e, file=sys.stderr)
        return 1
    budget = None
    if options.this_machine:
        budget = machine_budget()  # imports MLX, so only when asked
    print(describe(args, options.context, budget))
    return 0


if __name__ == "__main__":
    sys.exit(main())
