"""What goes into the bundle besides the Python code PyInstaller finds by itself.

The spec file (oss_desk.spec) calls these functions; tests/packaging checks them. Destinations
keep the source tree's layout, so code that finds files next to its module (metal_kernels'
`MSL_DIR`, the tokenizer's `DEFAULT_RESOURCES_DIR`) finds them under sys._MEIPASS unchanged.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterable
from pathlib import Path, PurePosixPath

KERNEL_DIR = "metal_kernels/msl"
RESOURCES_DIR = "resources"
# Read by app/self_test.py inside the bundle, to check that everything listed here resolves.
MANIFEST_NAME = "bundle_manifest.json"

# Build tools (make_icons.py), notes and editor litter in resources/ stay out of the app.
_SKIPPED_SUFFIXES = {".py", ".pyc"}
_SKIPPED_NAMES = {".DS_Store", "__pycache__", ".gitignore", "README.md"}

# The engine imports only these parts of mlx-lm (cache, mask, sampler), without running
# mlx_lm/__init__ (engine/mlx_lm_parts.py). The rest pulls in transformers and through it torch.
MLX_LM_MODULES = ("mlx_lm.models.base", "mlx_lm.models.cache", "mlx_lm.sample_utils")
# Packages that read their own metadata when imported (llguidance asks importlib.metadata for its
# version; keyring finds its backends through entry points): their dist-info must ship too.
METADATA_PACKAGES = ("llguidance", "keyring")

HIDDEN_IMPORTS = (
    *MLX_LM_MODULES,
    "mlx_lm._version",
    # mlx.core (a compiled module) imports these at start-up, where PyInstaller cannot see it.
    "mlx._reprlib_fix",
    "mlx.__array_api_info",
    # tiktoken finds encodings through this namespace package by iteration, which PyInstaller
    # cannot see; the engine builds its Encoding from files, but tiktoken.get_encoding() works.
    "tiktoken_ext",
    "tiktoken_ext.openai_public",
    # huggingface_hub exports its API lazily (module __getattr__); engine.download uses these.
    "huggingface_hub.hf_api",
    "huggingface_hub.file_download",
    "huggingface_hub.constants",
    "huggingface_hub.errors",
    "huggingface_hub.utils",
    # The app's entry point imports app.main, app.launch and app.self_test inside functions; the
    # self-test loads the engine's test kit by name.
    "app.launch",
    "app.self_test",
    "engine.testing.synthetic",
    "engine.testing.synthetic_tokenizer",
    "engine.testing.fake_hub",
)

# The python tool's interpreter is this program too (packaging/entry.py --python-tool): the code
# the model writes may import any of the standard library, not only what the app itself imports.
_STDLIB_LEFT_OUT = {"antigravity", "idlelib", "lib2to3", "pydoc_data", "this", "tkinter", "turtle"}
_STDLIB_LEFT_OUT |= {"turtledemo", "ensurepip", "venv", "test"}


_STDLIB_TEST_DIRS = {"test", "tests", "idle_test", "__pycache__"}


def python_tool_stdlib() -> list[str]:
    """The standard library's public modules on this build machine, packages with all their
    submodules (found in the files, without importing them), test suites left out."""
    names: list[str] = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in _STDLIB_LEFT_OUT:
            continue
        spec = importlib.util.find_spec(name)
        if spec is None:  # another system's module (winreg, msvcrt)
            continue
        names.append(name)
        for folder in spec.submodule_search_locations or ():
            names += _submodules(Path(folder), name)
    return names


def _submodules(folder: Path, package: str) -> list[str]:
    found: list[str] = []
    for entry in sorted(folder.iterdir()):
        if entry.is_dir() and entry.name not in _STDLIB_TEST_DIRS:
            if (entry / "__init__.py").is_file():
                found.append(f"{package}.{entry.name}")
                found += _submodules(entry, f"{package}.{entry.name}")
        elif entry.suffix == ".py" and entry.stem != "__init__":
            found.append(f"{package}.{entry.stem}")
    return found


EXCLUDES = (
    # Test oracles, test tools and linters: `make test` installs them in the same venv.
    "torch",
    "torchgen",
    "functorch",
    "gpt_oss",
    "pytest",
    "_pytest",
    "pytestqt",
    "py",
    "pluggy",
    "hypothesis",
    "mypy",
    "mypyc",
    "mypy_extensions",
    "ruff",
    "fpdf",
    "fontTools",
    "tkinter",
    "_tkinter",
    "IPython",
    "matplotlib",
    # mlx-lm's loaders, converters and servers, and what they import (see MLX_LM_MODULES).
    "transformers",
    "tokenizers",
    "sentencepiece",
    "jinja2",
    "mlx_lm.convert",
    "mlx_lm.generate",
    "mlx_lm.utils",
    "mlx_lm.tokenizer_utils",
    "mlx_lm.server",
    "mlx_lm.evaluate",
    "mlx_lm.tuner",
    # Optional imports of libraries we use for text only: pypdf and huggingface_hub's inference
    # client reach for Pillow to decode images, huggingface_hub's webhooks for pydantic.
    "PIL",
    "pydantic",
    "pydantic_core",
    # The Metal CPU emulator runs kernel tests on machines without Metal; the app never uses it.
    "metal_kernels.emulator",
)

# Qt platform plugins each system needs: the real window system, and offscreen for the self-test.
QT_PLATFORMS = {
    "darwin": ("qcocoa", "qoffscreen"),
    "linux": ("qxcb", "qoffscreen"),
}
# Plugin folders (and the Qt libraries only they load) for platforms we do not ship.
_UNUSED_QT_PLUGIN_DIRS = (
    "egldeviceintegrations",
    "wayland-decoration-client",
    "wayland-graphics-integration-client",
    "wayland-graphics-integration-server",
    "wayland-shell-integration",
    "designer",
    "qmltooling",
)
_UNUSED_QT_LIBS = ("libQt6Wayland", "libQt6WlShellIntegration", "libQt6EglFS")


def _kept(path: Path) -> bool:
    return not (
        path.suffix in _SKIPPED_SUFFIXES or _SKIPPED_NAMES.intersection(path.parts) or path.is_dir()
    )


def resource_files(root: Path) -> list[str]:
    """Files of resources/ that ship, as POSIX paths relative to resources/."""
    base = root / RESOURCES_DIR
    if not base.is_dir():
        return []
    return sorted(p.relative_to(base).as_posix() for p in base.rglob("*") if _kept(p))


def kernel_files(root: Path) -> list[str]:
    """The Metal kernel sources (.metal bodies and the shared header)."""
    base = root / KERNEL_DIR
    return sorted(p.name for p in base.iterdir() if p.suffix in (".metal", ".h"))


def manifest(root: Path) -> dict[str, list[str]]:
    return {"resources": resource_files(root), "kernel_sources": kernel_files(root)}


def write_manifest(root: Path, workdir: Path) -> Path:
    workdir.mkdir(parents=True, exist_ok=True)
    path = workdir / MANIFEST_NAME
    path.write_text(json.dumps(manifest(root), indent=1) + "\n", encoding="utf-8")
    return path


def datas(root: Path) -> list[tuple[str, str]]:
    """(source file, destination folder) pairs, PyInstaller's `datas` format."""
    pairs = [(str(root / KERNEL_DIR / name), KERNEL_DIR) for name in kernel_files(root)]
    for name in resource_files(root):
        dest = PurePosixPath(RESOURCES_DIR, name).parent
        pairs.append((str(root / RESOURCES_DIR / name), str(dest)))
    return pairs


def mlx_datas() -> list[tuple[str, str]]:
    """MLX's compiled Metal library (mlx-metal's mlx/lib/mlx.metallib on a Mac; none on Linux).

    libmlx looks for it next to itself, so it goes to mlx/lib like libmlx.dylib.
    """
    spec = importlib.util.find_spec("mlx")
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError("mlx is not installed in the build environment")
    pairs = []
    for location in spec.submodule_search_locations:
        pairs += [(str(p), "mlx/lib") for p in sorted(Path(location, "lib").glob("*.metallib"))]
    return pairs


def keep_binary(dest_name: str, platform: str) -> bool:
    """False for Qt plugins and libraries of platforms OSS Desk does not use on `platform`."""
    parts = PurePosixPath(dest_name.replace("\\", "/")).parts
    name = parts[-1]
    if any(name.startswith(lib) for lib in _UNUSED_QT_LIBS):
        return False
    if "plugins" not in parts:
        return True
    category = parts[parts.index("plugins") + 1] if parts.index("plugins") + 1 < len(parts) else ""
    if category in _UNUSED_QT_PLUGIN_DIRS:
        return False
    if category == "platforms":
        stem = name.removeprefix("lib").split(".")[0]
        return stem in QT_PLATFORMS.get(_platform_key(platform), ())
    return True


def filter_binaries(
    binaries: Iterable[tuple[str, str, str]], platform: str
) -> list[tuple[str, str, str]]:
    return [entry for entry in binaries if keep_binary(entry[0], platform)]


def _platform_key(platform: str) -> str:
    return "darwin" if platform == "darwin" else "linux"
