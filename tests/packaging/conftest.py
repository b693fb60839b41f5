"""packaging/ is a folder of build scripts, not a package (a top-level `packaging` package would
shadow pypa's), so its modules are loaded from their files."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGING = ROOT / "packaging"


def load(name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        f"oss_desk_packaging_{name}", PACKAGING / f"{name}.py"
    )
    assert spec is not None and spec.loader is not None, name
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="session")
def info_plist() -> ModuleType:
    return load("info_plist")


@pytest.fixture(scope="session")
def contents() -> ModuleType:
    return load("bundle_contents")
