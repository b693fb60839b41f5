"""The line of facts under an answer (effort, thinking time, tokens, speed), shown and exported."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

CUT_NOTES = {
    "budget": "the reasoning budget cut the thinking short",
    "loop": "the reasoning went in circles and was cut short",
    "no_answer": "the model stopped without an answer and was asked for one",
    "user": "you cut the reasoning short with Finish Now",
}
EFFORT_NAMES = {"low": "Low", "medium": "Medium", "high": "High"}


def facts_text(effort: str | None, stats: Mapping[str, Any]) -> str:
    """One line under an answer: effort, thinking time, tokens, speed, first-token latency."""
    parts = [f"{EFFORT_NAMES.get(effort, effort)} effort"] if effort else []
    if isinstance(stats.get("thinking_s"), int | float):
        parts.append(f"thought for {stats['thinking_s']:.1f} s")
    if isinstance(stats.get("reasoning_tokens"), int):
        parts.append(f"{stats['reasoning_tokens']:,} reasoning tokens")
    if isinstance(stats.get("answer_tokens"), int):
        parts.append(f"{stats['answer_tokens']:,} answer tokens")
    if isinstance(stats.get("decode_tps"), int | float):
        parts.append(f"{stats['decode_tps']:.1f} tok/s")
    if isinstance(stats.get("ttft_s"), int | float):
        parts.append(f"first token {stats['ttft_s']:.2f} s")
    if stats.get("budget_cut"):
        parts.append(CUT_NOTES.get(str(stats.get("cut_reason")), CUT_NOTES["budget"]))
    return " · ".join(parts)
