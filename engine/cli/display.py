"""Terminal output shared by the command-line tools: streamed channel text and statistics.

On a terminal, reasoning is dimmed with ANSI codes and the answer is plain; otherwise (a pipe or
a file) each channel starts on a new line with a plain label, so the output stays greppable.
"""

from __future__ import annotations

import argparse
import codecs
from typing import TextIO

from engine.chat import TurnStats
from engine.generate import Finished
from engine.sampling import SamplingSettings
from engine.tokenizer import HarmonyTokenizer

DIM = "\x1b[2m"
RESET = "\x1b[0m"
LABELS = {"analysis": "reasoning", "commentary": "commentary", "final": "answer"}


def use_color(out: TextIO) -> bool:
    try:
        return out.isatty()
    except (AttributeError, ValueError):  # closed or unusual streams
        return False


class ChannelPrinter:
    def __init__(self, out: TextIO, *, color: bool | None = None) -> None:
        self._out = out
        self._color = use_color(out) if color is None else color
        self._channel: str | None = None
        self._at_line_start = True

    def write(self, channel: str, text: str) -> None:
        if not text:
            return
        if channel != self._channel:
            self._switch(channel)
        self._out.write(text)
        self._at_line_start = text.endswith("\n")
        self._out.flush()

    def end(self) -> None:
        """Closes the current channel's text (style and line)."""
        if self._channel is not None:
            self._close()
        self._channel = None

    def note(self, text: str) -> None:
        """A line of its own, dimmed on a terminal: statistics, notices."""
        self.end()
        self._out.write(f"{DIM}{text}{RESET}\n" if self._color else f"{text}\n")
        self._out.flush()

    def _switch(self, channel: str) -> None:
        if self._channel is not None:
            self._close()
        self._channel = channel
        if self._color:
            if channel != "final":
                self._out.write(DIM)
        else:
            self._out.write(f"[{LABELS.get(channel, channel)}] ")
        self._at_line_start = False

    def _close(self) -> None:
        if self._color and self._channel != "final":
            self._out.write(RESET)
        if not self._at_line_start:
            self._out.write("\n")
            self._at_line_start = True


def format_turn_stats(stats: TurnStats) -> str:
    return (
        f"time to first token {stats.ttft_s:.2f} s · prefill {stats.prefill_tokens} tokens "
        f"({stats.reused_tokens} cached) at {stats.prefill_tokens_per_s:.1f} tok/s · decode "
        f"{stats.decode_tokens_per_s:.1f} tok/s · {stats.generated_tokens} tokens "
        f"({stats.reasoning_tokens} reasoning, {stats.answer_tokens} answer)"
    )


def format_stats(done: Finished) -> str:
    s = done.stats
    return (
        f"[{done.reason}] prompt {s.prompt_tokens} tokens, generated {s.generated_tokens}; "
        f"time to first token {s.ttft_s:.2f} s, prefill {s.prefill_tokens_per_s:.1f} tok/s, "
        f"decode {s.decode_tokens_per_s:.1f} tok/s"
    )


class TokenTextDecoder:
    """Token ids -> text as they stream, for plain-text output: multi-byte characters split
    across tokens come out whole, special tokens as their names, unknown ids as nothing."""

    def __init__(self, tokenizer: HarmonyTokenizer) -> None:
        self._tokenizer = tokenizer
        self._utf8 = codecs.getincrementaldecoder("utf-8")(errors="replace")

    def decode(self, token_id: int) -> str:
        data = self._tokenizer.token_bytes(token_id)
        if data is None:
            special = self._tokenizer.is_special(token_id)
            return self._utf8.decode(b"", final=True) + (
                self._tokenizer.decode([token_id]) if special else ""
            )
        return self._utf8.decode(data)

    def flush(self) -> str:
        return self._utf8.decode(b"", final=True)


def add_sampling_options(p: argparse.ArgumentParser) -> None:
    """Sampling and precision options shared by oss-desk-generate and oss-desk-chat."""
    p.add_argument("--temperature", type=float, default=1.0)
    p.add_argument("--top-p", type=float, default=1.0)
    p.add_argument("--seed", type=int)
    p.add_argument("--dtype", choices=("float32", "bfloat16", "float16"))


def sampling_settings(args: argparse.Namespace) -> SamplingSettings:
    """Raises ValueError for settings out of range."""
    return SamplingSettings(temperature=args.temperature, top_p=args.top_p, seed=args.seed)
