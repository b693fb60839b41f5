"""Tests of engine.harmony. `golden_dir()` finds OpenAI harmony's expected renderings."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

_REPO_ROOT = Path(__file__).resolve().parents[3]


def golden_dir() -> Path:
    """shared/harmony-golden from $OSS_DESK_SHARED, else from ../shared beside the repository.

    Fails (never skips) when missing: conformance to harmony is the point of these tests.
    """
    candidates = []
    if os.environ.get("OSS_DESK_SHARED"):
        candidates.append(Path(os.environ["OSS_DESK_SHARED"]) / "harmony-golden")
    candidates.append(_REPO_ROOT.parent / "shared" / "harmony-golden")
    for candidate in candidates:
        if candidate.is_dir():
            return candidate
    looked = ", ".join(str(c) for c in candidates)
    pytest.fail(
        f"harmony golden files not found (looked in {looked}); set OSS_DESK_SHARED to the "
        "shared/ folder or check it out beside the repository"
    )


def read_golden(name: str) -> str:
    # The files end with an editor's newline that is not part of the rendering.
    return (golden_dir() / name).read_text(encoding="utf-8").removesuffix("\n")
