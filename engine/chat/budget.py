"""How much a turn may reason, and a guard that notices when the reasoning goes round in circles.

When either trips, the session closes the analysis and opens the final channel itself, so the
user gets an answer in bounded time (see engine.chat.turn).
"""

from __future__ import annotations

from collections import Counter, deque
from collections.abc import Hashable
from dataclasses import dataclass

from engine.harmony import ReasoningEffort


@dataclass(frozen=True)
class ReasoningBudget:
    """Reasoning tokens allowed per effort, per model run (a tool result starts a new run).

    The defaults bound the wait before an answer. At 26-45 tok/s, the 20b's published decode
    speeds on 16-32 GB Macs, that is ~25-40 s (low), ~1.5-2.5 min (medium), ~6-10 min (high).
    Everyday questions stay well inside them; hard math at high effort can need more, hence
    configurable.
    The loop guard fires when one `loop_ngram`-token sequence occurs `loop_repeats` times within
    the last `loop_window` analysis tokens: 20 tokens is a whole sentence, which sound reasoning
    rarely repeats word for word four times in a row of ~2k tokens, while a stuck model does.
    """

    low: int = 1024
    medium: int = 4096
    high: int = 16384
    loop_ngram: int = 20
    loop_repeats: int = 4
    loop_window: int = 2048

    def __post_init__(self) -> None:
        if min(self.low, self.medium, self.high) < 1:
            raise ValueError("reasoning budgets must be at least 1 token")
        if self.loop_ngram < 1 or self.loop_repeats < 2:
            raise ValueError("loop_ngram must be >= 1 and loop_repeats >= 2")
        if self.loop_window < self.loop_ngram:
            raise ValueError("loop_window must be at least loop_ngram")

    def for_effort(self, effort: ReasoningEffort) -> int:
        return {
            ReasoningEffort.LOW: self.low,
            ReasoningEffort.MEDIUM: self.medium,
            ReasoningEffort.HIGH: self.high,
        }[ReasoningEffort(effort)]


class LoopGuard:
    """Counts the n-grams of a token stream over a sliding window; `add` says when one of them
    has occurred `repeats` times. O(1) per token."""

    def __init__(self, ngram: int, repeats: int, window: int) -> None:
        self._n = ngram
        self._repeats = repeats
        self._window = window
        self._recent: deque[int] = deque(maxlen=ngram)
        self._grams: deque[Hashable] = deque()
        self._counts: Counter[Hashable] = Counter()

    @classmethod
    def from_budget(cls, budget: ReasoningBudget) -> LoopGuard:
        return cls(budget.loop_ngram, budget.loop_repeats, budget.loop_window)

    def add(self, token_id: int) -> bool:
        """Adds one token; True when the n-gram it completes is now at `repeats` occurrences."""
        self._recent.append(token_id)
        if len(self._recent) < self._n:
            return False
        gram = tuple(self._recent)
        self._grams.append(gram)
        self._counts[gram] += 1
        # The window counts n-grams that start within the last `window` tokens.
        if len(self._grams) > self._window - self._n + 1:
            old = self._grams.popleft()
            self._counts[old] -= 1
            if not self._counts[old]:
                del self._counts[old]
        return self._counts[gram] >= self._repeats
