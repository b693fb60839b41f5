"""`oss-desk-serve`: the OpenAI-compatible server on one model, local-only by default."""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

from server.auth import KeyError_, default_key_file, resolve_key
from server.store import ResponseStore, default_path

if TYPE_CHECKING:
    from engine import HarmonyTokenizer, LoadedModel
    from server.runner import Loader

PROFILES = ("auto", "full", "16gb", "compact")


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="oss-desk-serve",
        description="Serve gpt-oss over an OpenAI-compatible API (Responses, Chat Completions).",
    )
    p.add_argument("--model", required=True, type=Path, help="the model folder")
    p.add_argument("--host", default="127.0.0.1", help="default 127.0.0.1 (this Mac only)")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--api-key", help="the key clients send as 'Authorization: Bearer KEY'")
    p.add_argument("--api-key-file", type=Path, help="read the key from this file")
    p.add_argument("--profile", choices=PROFILES, default="auto", help="memory profile")
    p.add_argument("--max-queue", type=int, default=8, help="requests waiting before 503")
    p.add_argument("--model-name", help="the id clients send as `model` (default: folder name)")
    p.add_argument("--db", type=Path, help=f"stored responses (default {default_path()})")
    p.add_argument(
        "--memory-limit",
        type=float,
        metavar="GIB",
        help="check that the model fits in at most GIB of this machine's memory",
    )
    p.add_argument(
        "--distributed",
        action="store_true",
        help="one process of a group started by mlx.launch, each holding a slice of the model "
        "(README: Bigger models)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.max_queue < 0:
        print("--max-queue must be 0 or more.", file=sys.stderr)
        return 2
    if args.memory_limit is not None and args.memory_limit <= 0:
        print("--memory-limit must be a positive number of GiB.", file=sys.stderr)
        return 2
    if args.distributed:
        if args.profile not in ("auto", "full"):
            print(
                f"--profile {args.profile} cannot be used with --distributed: a split model keeps "
                "every weight as the checkpoint has it. Leave --profile out, or pass --profile "
                "full to skip the memory check.",
                file=sys.stderr,
            )
            return 2
        from server.distributed import serve_distributed

        return serve_distributed(args)  # rank 0 resolves the key; other Macs keep none
    try:
        key, where = resolve_key(args.host, args.api_key, args.api_key_file, default_key_file())
    except KeyError_ as e:
        print(e, file=sys.stderr)
        return 2
    import uvicorn

    from server.app import create_app
    from server.runner import RunnerThread

    model_id = args.model_name or args.model.resolve().name
    loader = _loader(args.model, args.profile, args.memory_limit)
    runner = RunnerThread(model_id, loader, max_queue=args.max_queue)
    print(f"Loading {args.model} …", file=sys.stderr)
    try:
        runner.wait_ready()
    except Exception as e:  # the load error's first sentence says what to fix
        print(f"The model cannot be loaded: {e}", file=sys.stderr)
        return 1
    store = ResponseStore(args.db or default_path())
    print(where, file=sys.stderr)
    print(
        f"Serving `{model_id}` at http://{args.host}:{args.port}/v1 (responses in {store.path})",
        file=sys.stderr,
    )
    app = create_app(runner, api_key=key, store=store)
    uvicorn.run(app, host=args.host, port=args.port, log_level="info")
    runner.close()
    return 0


def _loader(model_dir: Path, profile: str, memory_limit: float | None = None) -> Loader:
    def load() -> tuple[LoadedModel, HarmonyTokenizer]:
        from engine import HarmonyTokenizer, ModelArgs, load_model, machine_budget, recommend
        from server.distributed import limited

        chosen = profile
        if chosen == "auto":
            budget = machine_budget()
            cut = budget.usable - limited(budget.usable, memory_limit)
            budget = replace(budget, reserve=budget.reserve + cut)  # usable is at most the limit
            verdict = recommend(ModelArgs.from_model_dir(model_dir), budget)
            if not verdict.fits:  # as the app does: loading it would swap the machine to a halt
                raise MemoryError(f"{verdict.message} Pass --profile to load it anyway.")
            chosen = verdict.profile
        model = load_model(model_dir, profile=chosen)
        return model, HarmonyTokenizer.from_model_dir(model_dir)

    return load


if __name__ == "__main__":
    sys.exit(main())
