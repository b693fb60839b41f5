"""What packaging/oss_desk.spec puts into the bundle besides the Python code."""

from __future__ import annotations

import json
import re
from pathlib import Path
from types import ModuleType

import pytest

from app import self_test
from tests.packaging.conftest import ROOT

MLX_LM_IMPORT = re.compile(r"^\s*(?:from|import) (mlx_lm(?:\.\w+)*)", re.M)


def fake_tree(root: Path) -> Path:
    files = {
        "metal_kernels/msl/mxfp4_common.h": "// header",
        "metal_kernels/msl/a.metal": "// kernel",
        "metal_kernels/msl/notes.txt": "not a kernel source",
        "resources/app-icon.svg": "<svg/>",
        "resources/icons/send.svg": "<svg/>",
        "resources/prompts/developer.md": "Be brief.",
        "resources/make_icons.py": "print('build tool')",
        "resources/README.md": "notes",
        "resources/__pycache__/make_icons.cpython-311.pyc": "",
    }
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


def test_datas_hold_kernel_sources_and_resources_in_the_source_layout(
    contents: ModuleType, tmp_path: Path
) -> None:
    root = fake_tree(tmp_path)
    datas = {(Path(src).relative_to(root).as_posix(), dest) for src, dest in contents.datas(root)}
    assert datas == {
        ("metal_kernels/msl/mxfp4_common.h", "metal_kernels/msl"),
        ("metal_kernels/msl/a.metal", "metal_kernels/msl"),
        ("resources/app-icon.svg", "resources"),
        ("resources/icons/send.svg", "resources/icons"),
        ("resources/prompts/developer.md", "resources/prompts"),
    }


def test_the_real_kernel_sources_and_resources_are_listed(contents: ModuleType) -> None:
    datas = contents.datas(ROOT)
    sources = {Path(src).resolve() for src, _ in datas}
    kernels = [
        *(ROOT / "metal_kernels/msl").glob("*.metal"),
        ROOT / "metal_kernels/msl/mxfp4_common.h",
    ]
    assert len(kernels) > 1
    assert {k.resolve() for k in kernels} <= sources
    resources = [
        p
        for p in (ROOT / "resources").rglob("*")
        if p.is_file() and p.suffix in (".svg", ".qss", ".png")
    ]
    assert {p.resolve() for p in resources} <= sources


def test_manifest_lists_what_datas_ship(contents: ModuleType, tmp_path: Path) -> None:
    root = fake_tree(tmp_path / "src")
    path = contents.write_manifest(root, tmp_path / "work")
    assert path.name == self_test.MANIFEST_NAME == contents.MANIFEST_NAME
    manifest = json.loads(path.read_text())
    assert manifest == {
        "resources": ["app-icon.svg", "icons/send.svg", "prompts/developer.md"],
        "kernel_sources": ["a.metal", "mxfp4_common.h"],
    }


def test_test_only_and_unused_packages_stay_out(contents: ModuleType) -> None:
    excluded = set(contents.EXCLUDES)
    for name in (
        "torch",
        "gpt_oss",
        "pytest",
        "hypothesis",
        "mypy",
        "ruff",
        "tkinter",
        "transformers",
    ):
        assert name in excluded
    assert not excluded & {"mlx", "mlx_lm", "tiktoken", "PySide6", "huggingface_hub", "numpy"}


def test_the_bundled_mlx_lm_modules_are_the_ones_our_code_imports(contents: ModuleType) -> None:
    # mlx_lm's own __init__ is skipped (engine/mlx_lm_parts.py) and left out; a new import
    # of another mlx_lm module must be added to MLX_LM_MODULES, or the bundle fails at run time.
    imported = {
        m
        for folder in ("engine", "metal_kernels", "app")
        for p in (ROOT / folder).rglob("*.py")
        for m in MLX_LM_IMPORT.findall(p.read_text(encoding="utf-8"))
    }
    missing = imported - set(contents.MLX_LM_MODULES)
    assert not missing, f"add {sorted(missing)} to MLX_LM_MODULES in packaging/bundle_contents.py"
    assert set(contents.MLX_LM_MODULES) <= set(contents.HIDDEN_IMPORTS)
    assert not set(contents.MLX_LM_MODULES) & set(contents.EXCLUDES)


@pytest.mark.parametrize(
    ("dest", "platform", "kept"),
    [
        ("PySide6/Qt/plugins/platforms/libqxcb.so", "linux", True),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.so", "linux", True),
        ("PySide6/Qt/plugins/platforms/libqeglfs.so", "linux", False),
        ("PySide6/Qt/plugins/platforms/libqwayland.so", "linux", False),
        ("PySide6/Qt/plugins/platforms/libqcocoa.dylib", "darwin", True),
        ("PySide6/Qt/plugins/platforms/libqoffscreen.dylib", "darwin", True),
        ("PySide6/Qt/plugins/platforms/libqminimal.dylib", "darwin", False),
        ("PySide6/Qt/plugins/wayland-shell-integration/libxdg-shell.so", "linux", False),
        ("PySide6/Qt/plugins/imageformats/libqsvg.so", "linux", True),
        ("PySide6/Qt/lib/libQt6WaylandClient.so.6", "linux", False),
        ("PySide6/Qt/lib/libQt6Widgets.so.6", "linux", True),
        ("mlx/lib/libmlx.so", "linux", True),
    ],
)
def test_only_the_qt_platforms_we_use_ship(
    contents: ModuleType, dest: str, platform: str, kept: bool
) -> None:
    assert contents.keep_binary(dest, platform) is kept


def test_mlx_metal_library_ships_next_to_libmlx_when_there_is_one(contents: ModuleType) -> None:
    pairs = contents.mlx_datas()  # mlx.metallib on a Mac; mlx[cpu] on Linux has none
    assert all(Path(src).name.endswith(".metallib") and dest == "mlx/lib" for src, dest in pairs)


def test_packages_that_read_their_own_metadata_ship_it(contents: ModuleType) -> None:
    """llguidance's __init__ asks importlib.metadata for its version: without its dist-info the
    bundle's first chat failed (the self-test caught it)."""
    import importlib.metadata

    assert "llguidance" in contents.METADATA_PACKAGES
    for name in contents.METADATA_PACKAGES:
        assert importlib.metadata.distribution(name).version


def test_the_python_tool_gets_the_whole_standard_library_but_its_tests(
    contents: ModuleType,
) -> None:
    # The sandboxed interpreter is the bundle itself; code the model writes imports freely.
    names = set(contents.python_tool_stdlib())
    wanted = {"fractions", "statistics", "xml.etree.ElementTree", "email.mime.text", "sqlite3"}
    assert wanted <= names
    assert "concurrent.futures.process" in names  # submodules of packages, found in the files
    assert not {n for n in names if n.split(".")[0] in {"tkinter", "idlelib", "test", "turtle"}}
    assert not {n for n in names if ".test." in f".{n}." or n.endswith(".tests")}
    assert not names & set(contents.EXCLUDES)
    assert "winreg" not in names  # another system's module
