"""`oss-desk-chat`: an interactive harmony chat in the terminal.

Reasoning streams dimmed (on a terminal; labelled otherwise), the answer plain, statistics after
each answer. Commands: /effort low|medium|high, /reset, /quit. Ctrl+C stops the current answer;
Ctrl+D (end of input) exits.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TextIO

from engine.chat import (
    ChannelDelta,
    ChatEvent,
    ChatSession,
    ReasoningBudget,
    ReasoningCut,
    ToolCallRequested,
    TurnFinished,
)
from engine.cli.display import (
    ChannelPrinter,
    add_sampling_options,
    format_turn_stats,
    sampling_settings,
)
from engine.errors import EngineError
from engine.harmony import ReasoningEffort
from engine.inference import load_model
from engine.tokenizer import HarmonyTokenizer

EFFORTS = tuple(e.value for e in ReasoningEffort)
HELP = "/effort low|medium|high · /reset · /quit · Ctrl+C stops an answer · Ctrl+D exits"
# This chat defines no tools; if the model calls one anyway, it is told so a few times per turn.
NO_TOOLS_RESULT = '{"error": "no tools are available in this chat"}'
MAX_TOOL_REPLIES = 3
CUT_NOTES = {
    "budget": "reasoning budget reached ({tokens} tokens): answering now",
    "loop": "reasoning was repeating itself ({tokens} tokens): answering now",
    "no_answer": "the model stopped without an answer: asking for one",
}


class ChatRepl:
    """The read-answer loop over a ChatSession; `cancel` is what Ctrl+C sets."""

    def __init__(
        self, session: ChatSession, inp: TextIO, out: TextIO, *, color: bool | None = None
    ) -> None:
        self.session = session
        self.cancel = threading.Event()
        self._inp = inp
        self._out = out
        self._printer = ChannelPrinter(out, color=color)

    def run(self) -> int:
        self._printer.note(f"effort {self.session.effort.value} · {HELP}")
        while True:
            try:
                text = self._read().strip()
                if text.startswith("/") and not self._command(text):
                    return 0
                if text and not text.startswith("/"):
                    self._answer(text)
            except EOFError:
                self._out.write("\n")
                return 0
            except KeyboardInterrupt:  # at the prompt (while answering, Ctrl+C cancels)
                self._out.write("\n")
                self._printer.note("(Ctrl+D or /quit exits)")

    def _read(self) -> str:
        if self._inp is sys.stdin and self._inp.isatty():
            return input("> ")  # line editing and history
        self._out.write("> ")
        self._out.flush()
        line = self._inp.readline()
        if not line:
            raise EOFError
        return line

    def _command(self, text: str) -> bool:
        """Runs a /command; False means quit."""
        name, _, arg = text.partition(" ")
        arg = arg.strip()
        if name in ("/quit", "/exit"):
            return False
        if name == "/reset":
            self.session.reset()
            self._printer.note("(conversation cleared)")
        elif name == "/effort" and arg in EFFORTS:
            self.session.set_effort(arg)
            self._printer.note(f"(reasoning effort: {arg})")
        elif name == "/effort":
            current = self.session.effort.value
            self._printer.note(f"(reasoning effort: {current}; choose one of {', '.join(EFFORTS)})")
        else:
            self._printer.note(f"(unknown command {name}) {HELP}")
        return True

    def _answer(self, text: str) -> None:
        self.cancel.clear()
        try:
            with self._ctrl_c_cancels():
                finished = self._show(self.session.send(text, self.cancel))
                replies = 0
                while finished is not None and finished.reason == "tool_call":
                    call = self.session.pending_tool_call
                    if call is None or replies == MAX_TOOL_REPLIES:
                        break
                    replies += 1
                    result = call.error_result() or NO_TOOLS_RESULT
                    events = self.session.submit_tool_result(call, result, self.cancel)
                    finished = self._show(events)
        except EngineError as e:
            self._printer.note(f"error: {e}")

    def _show(self, events: Iterator[ChatEvent]) -> TurnFinished | None:
        finished = None
        for event in events:
            if isinstance(event, ChannelDelta) and event.recipient is None:
                self._printer.write(event.channel, event.text)
            elif isinstance(event, ReasoningCut):
                self._printer.note(CUT_NOTES[event.reason].format(tokens=event.tokens))
            elif isinstance(event, ToolCallRequested):
                self._printer.note(f"(tool call {event.recipient}: {event.arguments_json})")
            elif isinstance(event, TurnFinished):
                finished = event
                if event.reason == "cancel":
                    self._printer.note("(stopped)")
                elif event.reason == "length" and event.answer:
                    self._printer.note("(the answer reached its length limit)")
                elif event.reason == "length":
                    self._printer.note("(the token limit came before any answer)")
                elif event.reason == "stop" and not event.answer.strip():
                    self._printer.note("(the model gave no answer)")
                self._printer.note(format_turn_stats(event.stats))
        return finished

    @contextmanager
    def _ctrl_c_cancels(self) -> Iterator[None]:
        """While answering, Ctrl+C sets `cancel` (checked between tokens) instead of raising."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous = signal.signal(signal.SIGINT, lambda _signum, _frame: self.cancel.set())
        try:
            yield
        finally:
            signal.signal(signal.SIGINT, previous)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oss-desk-chat", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="folder with config.json and safetensors")
    p.add_argument("--reasoning", choices=EFFORTS, default="medium", help="reasoning effort")
    p.add_argument("--max-tokens", type=int, default=4096, help="answer tokens per turn")
    p.add_argument("--reasoning-budget", type=int, help="reasoning tokens, for every effort")
    add_sampling_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = sampling_settings(args)
        n = args.reasoning_budget
        budget = ReasoningBudget() if n is None else ReasoningBudget(low=n, medium=n, high=n)
        if args.max_tokens < 1:
            raise ValueError("--max-tokens must be positive")
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model, dtype=args.dtype)
        tokenizer = HarmonyTokenizer.from_model_dir(args.model)
    except EngineError as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    print(f"loaded {args.model} in {model.load_seconds:.1f} s", file=sys.stderr)
    session = ChatSession(
        model,
        tokenizer,
        effort=args.reasoning,
        sampling=settings,
        budget=budget,
        max_answer_tokens=args.max_tokens,
    )
    return ChatRepl(session, sys.stdin, sys.stdout).run()


if __name__ == "__main__":
    sys.exit(main())
