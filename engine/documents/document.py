"""What extraction produces (kind, text, where each page starts) and helpers the readers share."""

from __future__ import annotations

import bisect
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

Kind = Literal["text", "markdown", "pdf", "docx", "html", "csv", "code"]
T = TypeVar("T")


@dataclass(frozen=True)
class ExtractedDocument:
    """A dropped file as text, ready to go into a user message.

    `page_offsets[i]` is where page i+1's own text starts in `text` (just after its
    "--- Page N ---" line), so a later citation can map a character offset back to a page.
    """

    name: str
    path: Path
    kind: Kind
    text: str
    pages: int | None
    page_offsets: tuple[int, ...]
    sha256: str
    size_bytes: int
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON values, for the reader process to send its result (no pickle: the parent
        must not run whatever a process that parsed a hostile file might send)."""
        return {
            "name": self.name,
            "path": str(self.path),
            "kind": self.kind,
            "text": self.text,
            "pages": self.pages,
            "page_offsets": list(self.page_offsets),
            "sha256": self.sha256,
            "size_bytes": self.size_bytes,
            "warnings": list(self.warnings),
        }

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> ExtractedDocument:
        """The inverse of `to_dict`; ValueError if anything is missing or of the wrong type."""
        try:
            kind = values["kind"]
            pages = values["pages"]
            if kind not in get_args(Kind):
                raise TypeError(f"unknown kind {kind!r}")
            doc = cls(
                name=_checked(values["name"], str),
                path=Path(_checked(values["path"], str)),
                kind=kind,
                text=_checked(values["text"], str),
                pages=None if pages is None else _checked(pages, int),
                page_offsets=tuple(_checked(o, int) for o in values["page_offsets"]),
                sha256=_checked(values["sha256"], str),
                size_bytes=_checked(values["size_bytes"], int),
                warnings=tuple(_checked(w, str) for w in values["warnings"]),
            )
        except (KeyError, TypeError) as e:
            raise ValueError(f"not an extracted document: {e!r}") from e
        return doc

    def page_of(self, offset: int) -> int | None:
        """The 1-based page holding character `offset` of `text`; None without pages."""
        if not self.page_offsets:
            return None
        if not 0 <= offset <= len(self.text):
            raise ValueError(f"offset {offset} is outside the text (0..{len(self.text)})")
        return max(1, bisect.bisect_right(self.page_offsets, offset))


def _checked(value: object, kind: type[T]) -> T:
    if not isinstance(value, kind) or isinstance(value, bool):
        raise TypeError(f"expected {kind.__name__}, got {type(value).__name__}")
    return value


@dataclass(frozen=True)
class Body:
    """What one format reader returns; `extract` adds the file's identity around it."""

    text: str
    pages: int | None = None
    page_offsets: tuple[int, ...] = ()
    warnings: tuple[str, ...] = field(default_factory=tuple)


def normalize_newlines(text: str) -> str:
    # Windows and classic-Mac line ends would otherwise count twice or break offsets.
    return text.replace("\r\n", "\n").replace("\r", "\n")


def human_size(n: int) -> str:
    """Bytes in the units Finder uses (decimal: 1 MB = 1,000,000 bytes)."""
    if n < 1000:
        return f"{n:,} bytes"
    value = float(n)
    for unit in ("KB", "MB", "GB"):
        value /= 1000
        if value < 1000 or unit == "GB":
            break
    return f"{value:,.1f}".removesuffix(".0") + f" {unit}"


_SPACE = re.compile(r"\s+")


def _cell(text: str) -> str:
    # A pipe would split the cell and a newline would end the row, so neither may survive as is.
    return _SPACE.sub(" ", text).strip().replace("|", "\\|")


def markdown_table(rows: Sequence[Sequence[str]]) -> str:
    """The first row is the header; short rows are padded so every row has the same width."""
    if not rows:
        return ""
    width = max(1, *(len(r) for r in rows))
    lines = []
    for i, row in enumerate(rows):
        cells = [_cell(c) for c in row] + [""] * (width - len(row))
        lines.append("| " + " | ".join(cells) + " |")
        if i == 0:
            lines.append("|" + "|".join(["---"] * width) + "|")
    return "\n".join(lines)
