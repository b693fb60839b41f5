"""Converted (quantized) weights kept on disk, so a lean profile converts a checkpoint only once.

A precision profile quantizes the attention projections and the unembedding at load. That costs
time (about 20 s for gpt-oss-20b on a CPU), so the result is written under the user's cache
folder, one safetensors file per tensor, with a manifest that names the source checkpoint (each
file's size, modification time and header hash), the profile and dtype, and the SHA-256 of every
file written. A later load uses the cache only if all of that still matches; anything else
(another checkpoint, a changed file, a missing or resized cache file) is converted again. Both
cases are logged: conversion is never silent.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import mlx.core as mx
from platformdirs import user_cache_dir

from engine.memory.profiles import PrecisionProfile

log = logging.getLogger(__name__)
FORMAT = 1
MANIFEST = "manifest.json"


def default_root() -> Path:
    return Path(os.environ.get("OSS_DESK_CONVERTED_DIR") or user_cache_dir("OSS Desk")) / (
        "converted"
    )


def source_identity(files: Iterable[Path]) -> dict[str, Any]:
    """What must not change for converted tensors to stay valid: each file's size, mtime and
    safetensors header (which holds every tensor's dtype, shape and place)."""
    out: dict[str, Any] = {}
    for f in sorted(files):
        st = f.stat()
        with f.open("rb") as fh:
            n = int.from_bytes(fh.read(8), "little")
            header = fh.read(min(n, 100 * 2**20))
        out[f.name] = {
            "size": st.st_size,
            "mtime_ns": st.st_mtime_ns,
            "header_sha256": hashlib.sha256(header).hexdigest(),
        }
    return out


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 22), b""):
            h.update(block)
    return h.hexdigest()


class ConversionCache:
    """One folder per (source checkpoint, profile, dtype)."""

    def __init__(
        self, model_dir: Path, files: Iterable[Path], profile: PrecisionProfile, dtype: str,
        root: Path | None = None,
    ) -> None:  # fmt: skip
        self.identity = {
            "format": FORMAT,
            "model_dir": str(model_dir.resolve()),
            "source": source_identity(files),
            "profile": profile.name,
            "attention_bits": profile.attention_bits,
            "unembedding_bits": profile.unembedding_bits,
            "group_size": profile.group_size,
            "dtype": dtype,
        }
        key = hashlib.sha256(json.dumps(self.identity, sort_keys=True).encode()).hexdigest()
        self.folder = (root or default_root()) / key[:24]
        self._written: dict[str, dict[str, Any]] = {}
        self._broken = False
        self._valid = self._check()
        log.info(
            "%s converted weights for profile %r in %s",
            "using" if self._valid else "converting and keeping",
            profile.name,
            self.folder,
        )

    @property
    def valid(self) -> bool:
        return self._valid

    def _check(self) -> bool:
        manifest = self.folder / MANIFEST
        try:
            data = json.loads(manifest.read_text(encoding="utf-8"))
        except (OSError, json.JSONDecodeError):
            return False
        if data.get("identity") != self.identity:
            return False
        for entry in data.get("tensors", {}).values():
            f = self.folder / entry["file"]
            if not f.is_file() or f.stat().st_size != entry["size"]:
                log.warning("converted weights in %s are incomplete; converting again", self.folder)
                return False
        self._written = data["tensors"]
        return True

    def load(self, name: str) -> list[tuple[str, mx.array]] | None:
        """The converted arrays of `name` (lazy, read from the cache file), if cached."""
        entry = self._written.get(name) if self._valid else None
        if entry is None:
            return None
        arrays = mx.load(str(self.folder / entry["file"]))
        assert isinstance(arrays, dict)
        return sorted(arrays.items())

    def store(self, name: str, items: list[tuple[str, mx.array]]) -> None:
        """Writes one tensor's converted arrays; the manifest follows in `commit`."""
        if self._valid or self._broken:
            return
        file = self.folder / f"{name}.safetensors"
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            mx.save_safetensors(str(file), dict(items))
            entry = {"file": file.name, "size": file.stat().st_size, "sha256": _sha256(file)}
        except (OSError, RuntimeError) as e:  # a full disk must not stop the model from loading
            log.warning("cannot keep converted weights in %s (%s); they are converted anew "
                        "on each load", self.folder, e)  # fmt: skip
            self._broken = True
            self.discard()
            return
        self._written[name] = entry

    def commit(self) -> None:
        """Writes the manifest atomically, which makes the cache valid for the next load."""
        if self._valid or self._broken or not self._written:
            return
        text = json.dumps({"identity": self.identity, "tensors": self._written}, indent=1)
        fd, tmp = tempfile.mkstemp(dir=self.folder, prefix=".manifest-")
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
        os.replace(tmp, self.folder / MANIFEST)
        log.info("converted weights saved in %s", self.folder)

    def discard(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
