"""Find the C++ compiler, build kernel libraries, and cache them on disk.

A kernel library is cached under a hash of its C++ text, the shim and runtime sources, and the
compiler's identity and flags, so each (source, template, dtypes) instantiation compiles once per
machine. The runtime is compiled once into object files that every kernel library links.
"""

from __future__ import annotations

import functools
import hashlib
import os
import platform
import shlex
import shutil
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import platformdirs

from .errors import EmulatorUnavailable, KernelCompileError

SHIM_DIR = Path(__file__).resolve().parent
RUNTIME_SOURCES = (
    "msl_scheduler.cpp",
    "msl_launch.cpp",
    "msl_races.cpp",
    "msl_counters.cpp",
)
SHIM_FILES = ("msl_runtime.h", "msl_internal.h", "msl_shim.h", "msl_math.h", "msl_simd.h")
_SUPPORTED = {("Linux", "x86_64"), ("Linux", "aarch64"), ("Darwin", "x86_64"), ("Darwin", "arm64")}
_MAX_OUTPUT_LINES = 60

CXXFLAGS = (
    "-std=c++17",
    "-O2",
    "-fPIC",
    "-fvisibility=hidden",
    "-fno-strict-aliasing",  # kernels reinterpret buffers (uint8 blocks read as uint32)
    "-ffp-contract=off",  # no silent FMA: results must not depend on the optimiser
    "-fwrapv",  # GPUs wrap on signed overflow
    "-U_FORTIFY_SOURCE",  # its __longjmp_chk rejects fiber switches
    "-fstack-clash-protection",  # big frames probe each page, so overflows hit the guard page
    "-fdiagnostics-color=never",
    "-Wno-attributes",  # [[buffer(0)]], [[kernel]], [[host_name(...)]]
    "-Wno-unknown-pragmas",
)


@dataclass(frozen=True)
class Toolchain:
    cxx: str
    identity: str  # first line of `--version`, part of every cache key
    flags: tuple[str, ...]
    link_flags: tuple[str, ...]


def unavailable_reason() -> str | None:
    """Why the emulator cannot run here, or None if it can."""
    system, machine = platform.system(), platform.machine().lower()
    machine = {"amd64": "x86_64", "arm64": "arm64" if system == "Darwin" else "aarch64"}.get(
        machine, machine
    )
    if (system, machine) not in _SUPPORTED:
        return f"{system} on {machine} is not supported (x86-64/aarch64 Linux or macOS)"
    if _find_compiler() is None:
        configured = os.environ.get("OSS_DESK_EMU_CXX")
        if configured:
            return f"OSS_DESK_EMU_CXX={configured} is not an executable"
        return "no C++ compiler found (set OSS_DESK_EMU_CXX or CXX, or install g++ or clang++)"
    return None


def is_available() -> bool:
    return unavailable_reason() is None


def _find_compiler() -> str | None:
    if configured := os.environ.get("OSS_DESK_EMU_CXX"):  # an explicit choice has no fallback
        return shutil.which(configured)
    for candidate in (os.environ.get("CXX"), "g++", "clang++"):
        if candidate and (path := shutil.which(candidate)):
            return path
    return None


def _cpu_flags() -> tuple[str, ...]:
    if platform.machine().lower() not in ("x86_64", "amd64"):
        return ()
    try:
        cpuinfo = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    words = set(cpuinfo.split())
    # Hardware half conversions and fmaf instead of library calls: 3-5x faster on half-heavy code.
    return tuple(
        flag for flag, feature in (("-mf16c", "f16c"), ("-mfma", "fma")) if feature in words
    )


@functools.cache
def toolchain() -> Toolchain:
    if (reason := unavailable_reason()) is not None:
        raise EmulatorUnavailable(reason)
    cxx = _find_compiler()
    assert cxx is not None
    version = subprocess.run([cxx, "--version"], capture_output=True, text=True, check=False)
    identity = (version.stdout.splitlines() or [cxx])[0]
    limit = ("-ferror-limit=10",) if "clang" in identity else ("-fmax-errors=10",)
    link: tuple[str, ...] = ("-shared", "-pthread")
    if platform.system() == "Linux":
        link += ("-Wl,-z,now",)  # no lazy binding in the forked child
    return Toolchain(cxx, identity, CXXFLAGS + _cpu_flags() + limit, link)


def cache_dir() -> Path:
    if configured := os.environ.get("OSS_DESK_EMU_CACHE"):
        return Path(configured) / "metal-emulator"
    path = Path(platformdirs.user_cache_dir("oss-desk")) / "metal-emulator"
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:  # e.g. a read-only home on a CI runner
        path = Path(tempfile.gettempdir()) / f"oss-desk-metal-emulator-{os.getuid()}"
    return path


@functools.cache
def _shim_digest() -> str:
    h = hashlib.sha256()
    for name in SHIM_FILES + RUNTIME_SOURCES:
        h.update(name.encode() + b"\0" + (SHIM_DIR / name).read_bytes())
    return h.hexdigest()


def _key(*parts: str) -> str:
    h = hashlib.sha256()
    for part in parts:
        h.update(part.encode() + b"\0")
    return h.hexdigest()[:24]


def extra_flags() -> tuple[str, ...]:
    """OSS_DESK_EMU_CXXFLAGS, e.g. "-O0 -g" to step through a kernel with OSS_DESK_EMU_ISOLATE=0."""
    return tuple(shlex.split(os.environ.get("OSS_DESK_EMU_CXXFLAGS", "")))


def _run(tc: Toolchain, args: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    cmd = [tc.cxx, *tc.flags, *extra_flags(), "-I", str(SHIM_DIR), *args]
    return subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, check=False)


def _runtime_objects(tc: Toolchain, root: Path) -> list[Path]:
    key = _key(_shim_digest(), tc.identity, *tc.flags, *extra_flags())
    objects = []
    for source in RUNTIME_SOURCES:
        obj = root / "runtime" / f"{Path(source).stem}-{key}.o"
        objects.append(obj)
        if obj.exists():
            continue
        obj.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".o", dir=obj.parent)
        os.close(fd)
        result = _run(tc, ["-c", str(SHIM_DIR / source), "-o", tmp], obj.parent)
        if result.returncode != 0:
            os.unlink(tmp)
            raise KernelCompileError(source, tc.identity, result.stderr, obj.parent)
        os.replace(tmp, obj)  # atomic: concurrent test processes may build it too
    return objects


def _race_flags(tc: Toolchain) -> tuple[str, ...]:
    if "clang" in tc.identity:
        return ("-fsanitize=thread", "-mllvm", "-tsan-instrument-func-entry-exit=false")
    return ("-fsanitize=thread", "--param=tsan-instrument-func-entry-exit=0")


def _trim(output: str, build_dir: Path) -> str:
    lines = [line.replace(f"{build_dir}/", "") for line in output.splitlines()]
    lines = [line.replace(f"{SHIM_DIR}/", "") for line in lines]
    if len(lines) > _MAX_OUTPUT_LINES:
        lines = [*lines[:_MAX_OUTPUT_LINES], f"... ({len(lines) - _MAX_OUTPUT_LINES} more lines)"]
    return "\n".join(lines)


def build(label: str, stem: str, cpp: str, files: dict[str, str]) -> Path:
    """Compile a kernel translation unit (cached) and return the path of its shared library.

    ``files`` are written next to the C++ file so that diagnostics can quote the kernel's lines.
    """
    tc = toolchain()
    root = cache_dir()
    key = _key(cpp, _shim_digest(), tc.identity, *tc.flags, *_race_flags(tc), *extra_flags())
    final = root / "kernels" / f"{stem}-{key}"
    library = final / "kernel.so"
    if library.exists():
        return library
    runtime = _runtime_objects(tc, root)
    final.parent.mkdir(parents=True, exist_ok=True)
    build_dir = Path(tempfile.mkdtemp(prefix=f".{stem}-", dir=final.parent))
    (build_dir / "kernel.cpp").write_text(cpp)
    for name, text in files.items():
        (build_dir / name).parent.mkdir(parents=True, exist_ok=True)
        (build_dir / name).write_text(text)
    # Kernel code only: the sanitizer's hooks (msl_races.cpp) see every load and store; no
    # sanitizer runtime is linked. -g1 keeps line tables so a race report can name kernel lines.
    result = _run(tc, [*_race_flags(tc), "-g1", "-c", "kernel.cpp", "-o", "kernel.o"], build_dir)
    if result.returncode == 0:
        args = ["kernel.o", *map(str, runtime), "-o", "kernel.so", *tc.link_flags]
        result = _run(tc, args, build_dir)
    if result.returncode != 0:
        failed = final.with_name(final.name + ".failed")
        shutil.rmtree(failed, ignore_errors=True)
        build_dir.rename(failed)  # kept for inspection: the message points at it
        raise KernelCompileError(label, tc.identity, _trim(result.stderr, build_dir), failed)
    try:
        build_dir.rename(final)
    except OSError:  # another process finished the same build first
        shutil.rmtree(build_dir, ignore_errors=True)
    return library
