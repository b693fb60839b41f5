"""`oss-desk-generate`: generate from a gpt-oss checkpoint on the command line.

Works before any tokenizer exists (`--prompt-ids 1,2,3` prints ids); with a tokenizer in the model
folder, `--prompt TEXT` renders a harmony chat prompt (or, with `--raw`, plain text) and prints
the decoded text.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from engine import EngineError, Finished, LoadedModel, SamplingSettings, Token, load_model
from engine.cli.display import add_sampling_options, format_stats, sampling_settings


def _parse_ids(text: str) -> list[int]:
    try:
        ids = [int(part) for part in text.replace(" ", "").split(",") if part]
    except ValueError:
        raise argparse.ArgumentTypeError("expected comma-separated token ids, e.g. 1,2,3") from None
    if not ids:
        raise argparse.ArgumentTypeError("at least one token id is needed")
    return ids


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="oss-desk-generate", description=__doc__.split("\n")[0])
    p.add_argument("--model", required=True, help="folder with config.json and safetensors")
    src = p.add_mutually_exclusive_group(required=True)
    src.add_argument("--prompt-ids", type=_parse_ids, help="comma-separated token ids")
    src.add_argument("--prompt", help="text; rendered as a harmony user message unless --raw")
    p.add_argument("--raw", action="store_true", help="tokenize --prompt as plain text")
    p.add_argument(
        "--reasoning", choices=("low", "medium", "high"), default="medium", help="effort"
    )
    p.add_argument("--max-tokens", type=int, default=128)
    add_sampling_options(p)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = sampling_settings(args)
    except ValueError as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    try:
        model = load_model(args.model, dtype=args.dtype)
        print(f"loaded {args.model} in {model.load_seconds:.1f} s", file=sys.stderr)
        if args.prompt_ids is not None:
            return _generate_ids(model, args.prompt_ids, settings, args.max_tokens)
        from engine.cli.text import generate_text

        return generate_text(model, args, settings)
    except (EngineError, ValueError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


def _generate_ids(model: LoadedModel, prompt: list[int], settings: SamplingSettings, n: int) -> int:
    for ev in model.generate(prompt, settings=settings, max_tokens=n):
        if isinstance(ev, Token):
            print(ev.id, end=",", flush=True)
        elif isinstance(ev, Finished):
            print()
            print(format_stats(ev), file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
