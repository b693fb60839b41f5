"""`oss-desk-generate --prompt TEXT`: one harmony chat completion (or, with `--raw`, a plain-text
continuation) streamed to the terminal. No budgets or cache reuse here: that is oss-desk-chat."""

from __future__ import annotations

import argparse
import sys

from engine.cli.display import ChannelPrinter, TokenTextDecoder, format_stats
from engine.generate import Finished, Token
from engine.harmony import (
    Conversation,
    Event,
    HarmonyStreamParser,
    Message,
    ReasoningEffort,
    SystemContent,
    TextDelta,
    render_for_completion,
)
from engine.inference import LoadedModel
from engine.sampling import SamplingSettings
from engine.tokenizer import STOP_TOKENS_FOR_SAMPLING, HarmonyTokenizer


def generate_text(model: LoadedModel, args: argparse.Namespace, settings: SamplingSettings) -> int:
    """Uses args.model (for the tokenizer), args.prompt, args.raw, args.reasoning and
    args.max_tokens. Text goes to stdout, statistics to stderr."""
    tokenizer = HarmonyTokenizer.from_model_dir(args.model)
    if args.raw:
        _continue_text(model, tokenizer, args.prompt, settings, args.max_tokens)
    else:
        _chat_completion(model, tokenizer, args, settings)
    return 0


def _continue_text(
    model: LoadedModel,
    tokenizer: HarmonyTokenizer,
    text: str,
    settings: SamplingSettings,
    max_tokens: int,
) -> None:
    # Special-token text in the prompt stays plain text, as a user would expect of --raw.
    prompt = tokenizer.encode(text)
    decoder = TokenTextDecoder(tokenizer)
    out = sys.stdout
    for event in model.generate(prompt, settings=settings, max_tokens=max_tokens):
        if isinstance(event, Token):
            out.write(decoder.decode(event.id))
            out.flush()
        elif isinstance(event, Finished):
            out.write(decoder.flush() + "\n")
            print(format_stats(event), file=sys.stderr)


def _chat_completion(
    model: LoadedModel,
    tokenizer: HarmonyTokenizer,
    args: argparse.Namespace,
    settings: SamplingSettings,
) -> None:
    system = SystemContent(reasoning_effort=ReasoningEffort(args.reasoning))
    conversation = Conversation((Message.system(system), Message.user(args.prompt)))
    prompt = render_for_completion(conversation).token_ids(tokenizer)
    parser = HarmonyStreamParser(tokenizer)
    printer = ChannelPrinter(sys.stdout)

    def show(events: list[Event]) -> None:
        for e in events:
            if isinstance(e, TextDelta):
                printer.write(e.channel.value, e.text)

    stream = model.generate(
        prompt, settings=settings, stop_ids=STOP_TOKENS_FOR_SAMPLING, max_tokens=args.max_tokens
    )
    for event in stream:
        if isinstance(event, Token):
            show(parser.feed(event.id))
        elif isinstance(event, Finished):
            show(parser.finish("end"))
            printer.end()
            print(format_stats(event), file=sys.stderr)
