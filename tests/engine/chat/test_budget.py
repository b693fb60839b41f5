"""Reasoning budgets per effort and the n-gram loop guard, without a model."""

from __future__ import annotations

import pytest

from engine import ReasoningBudget, ReasoningEffort
from engine.chat import LoopGuard


def test_budget_defaults_grow_with_effort() -> None:
    budget = ReasoningBudget()
    sizes = [budget.for_effort(e) for e in ReasoningEffort]
    assert sizes == [1024, 4096, 16384]
    assert budget.for_effort("high") == 16384  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "bad", [{"low": 0}, {"loop_ngram": 0}, {"loop_repeats": 1}, {"loop_window": 3, "loop_ngram": 4}]
)
def test_budget_rejects_nonsense(bad: dict[str, int]) -> None:
    with pytest.raises(ValueError):
        ReasoningBudget(**bad)


def first_trip(guard: LoopGuard, tokens: list[int]) -> int | None:
    """1-based index of the token at which the guard fires."""
    return next((i for i, t in enumerate(tokens, start=1) if guard.add(t)), None)


def test_guard_fires_on_the_nth_occurrence_of_an_ngram() -> None:
    cycle = [1, 2, 3, 4, 5]
    # 3-grams: (1,2,3) occurs at tokens 3, 8 and 13; the third time is the trip
    assert first_trip(LoopGuard(3, 3, 100), cycle * 4) == 13


def test_guard_catches_a_single_token_repeated() -> None:
    assert first_trip(LoopGuard(4, 3, 100), [7] * 10) == 6


def test_guard_ignores_varied_text() -> None:
    assert first_trip(LoopGuard(3, 2, 1000), list(range(500))) is None


def test_guard_forgets_ngrams_that_left_the_window() -> None:
    text = [1, 2, 3, *range(100, 140), 1, 2, 3, *range(200, 240), 1, 2, 3]
    assert first_trip(LoopGuard(3, 3, 1000), text) == len(text)
    assert first_trip(LoopGuard(3, 3, 50), text) is None  # the first (1,2,3) is out of range
