"""A chat on a model split across the processes of a group: run it in every process.

    mlx.launch -n 2 --backend ring -- -m tests.engine.distributed.chat_ranks MODEL OUT

Rank 0 runs `chat_turns` on its DistributedLoadedModel and writes OUT/turns.json (or
OUT/error.txt); the other ranks follow it. The test runs the same `chat_turns` on one process.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from engine import ChatSession, HarmonyTokenizer, LoadedModel, PromptCache, SamplingSettings
from engine.chat.budget import ReasoningBudget
from engine.chat.events import TurnFinished
from engine.chat.session import TurnEvents
from engine.distributed.group import DistributedError, init_group
from engine.distributed.runtime import load_rank_model

TOKENS = 6  # reasoning and answer tokens per turn: the prompts are far longer than the window
STEPS = ("one", "two", "three", "regenerate", "edit", "reopen")


def chat_turns(
    model: LoadedModel, tokenizer: HarmonyTokenizer, cache_folder: Path
) -> list[dict[str, Any]]:
    """Three greedy turns, the last answer regenerated, the last message edited, then the chat
    reopened with its cache saved to and restored from `cache_folder` for one more turn: the
    token ids the cache holds after each turn, and how much of each prompt was prefilled."""
    budget = ReasoningBudget(low=TOKENS, medium=TOKENS, high=TOKENS)
    options: dict[str, Any] = {
        "sampling": SamplingSettings(temperature=0),
        "budget": budget,
        "max_answer_tokens": TOKENS,
    }
    session = ChatSession(model, tokenizer, **options)
    found = []
    for step in STEPS:
        extra: dict[str, Any] = {}
        if step == "regenerate":
            events: TurnEvents = session.regenerate()
        elif step == "edit":
            events = session.edit_last_user_message("A different third question")
        elif step == "reopen":
            files = PromptCache(model, tokenizer, cache_folder)
            extra["saved"] = files.save("chat", session).saved
            session = ChatSession.from_messages(model, tokenizer, session.messages, **options)
            extra["restored"] = files.restore("chat", session).restored
            events = session.send("And after reopening?")
        else:
            events = session.send(f"Question number {step}?")
        finished = [e for e in events if isinstance(e, TurnFinished)][-1]
        stats = finished.stats
        found.append({
            "step": step,
            "tokens": list(session.cached_tokens),
            "reason": finished.reason,
            "prompt_tokens": stats.prompt_tokens,
            "reused_tokens": stats.reused_tokens,
            "prefill_tokens": stats.prefill_tokens,
            **extra,
        })  # fmt: skip
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("out", type=Path)
    args = parser.parse_args(argv)
    part = load_rank_model(args.model, init_group(), dtype="float32", step_timeout=30)
    if part.loaded is None:
        part.follow()
        return 0
    try:
        tokenizer = HarmonyTokenizer.from_model_dir(args.model)
        turns = chat_turns(part.loaded, tokenizer, args.out / "prompt-cache")
    except DistributedError as e:  # the group is lost: nobody is left to stop
        (args.out / "error.txt").write_text(str(e))
        return 1
    part.stop()
    (args.out / "turns.json").write_text(json.dumps(turns))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
