"""The command line of `oss-desk` (see app/main.py), parsed before anything heavy is imported."""

from __future__ import annotations

import argparse
from collections.abc import Sequence

# app.settings.Profile's values, spelled out: that module imports Qt, which a second launch that
# only hands its files over never needs (tests/app/test_startup.py keeps the two equal).
PROFILES = ("auto", "full", "16gb", "compact")


def parse_args(argv: Sequence[str]) -> tuple[argparse.Namespace, list[str]]:
    """Our options, and the rest for Qt (e.g. -platform, -style)."""
    p = argparse.ArgumentParser(prog="oss-desk", description="Chat with gpt-oss on this Mac.")
    p.add_argument("--model", help="model folder (config.json, safetensors, tokenizer)")
    p.add_argument("--data-dir", help="keep history and settings in this folder")
    p.add_argument("--profile", choices=PROFILES, help="memory profile")
    p.add_argument("files", nargs="*", help="documents to attach")
    return p.parse_known_args(list(argv))
