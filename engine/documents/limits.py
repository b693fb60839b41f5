"""How much one document may cost to read: time, memory, output and archive expansion.

A dropped file is untrusted input. These bounds turn a file built to hang or exhaust the Mac (a zip
bomb, quadratic markup, a PDF whose pages repeat one huge stream) into a message the user can act
on. Time and memory are enforced around the reading process (engine.documents.sandbox); the others
are checked while reading, before the expensive step where possible.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from engine.errors import UnsupportedDocumentError

MiB = 1 << 20
MAX_BYTES = 50_000_000
MAX_CSV_ROWS = 2_000

LimitKind = Literal["time", "memory", "size", "crash"]


@dataclass(frozen=True)
class DocumentLimits:
    """Bounds for reading one document; the defaults suit a desktop app reading user files."""

    seconds: float = 60.0  # wall time, from starting the reader to its answer
    memory_bytes: int = 2048 * MiB  # the reader's address space (its peak size on macOS)
    max_bytes: int = MAX_BYTES  # the file on disk
    max_chars: int = 2_000_000  # extracted text; about 4x the largest context of gpt-oss
    max_pages: int = 2_000
    max_csv_rows: int = MAX_CSV_ROWS
    max_unpacked_bytes: int = 250_000_000  # all parts of a .docx together, once inflated
    max_ratio: int = 500  # inflated / compressed, for a part over `ratio_floor_bytes`
    ratio_floor_bytes: int = 10_000_000  # repetitive Word XML reaches 250x; small parts are cheap
    max_archive_members: int = 5_000
    max_page_content_bytes: int = 8_000_000  # one PDF page's drawing instructions, decoded
    page_seconds: float = 10.0  # one PDF page (where a timer is free: in the reader process)

    def __post_init__(self) -> None:
        for f in fields(self):
            if getattr(self, f.name) <= 0:
                raise ValueError(f"DocumentLimits.{f.name} must be > 0")

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> DocumentLimits:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in values.items() if k in known})


class DocumentLimitError(UnsupportedDocumentError):
    """A document would cost more than a limit allows, or its reader died; `limit` says which."""

    def __init__(self, message: str, *, limit: LimitKind) -> None:
        super().__init__(message)
        self.limit: LimitKind = limit


def too_much_text(name: str, max_chars: int) -> DocumentLimitError:
    return DocumentLimitError(
        f"{name} has too much text to attach (more than {max_chars:,} characters): attach only "
        "the part you need, such as a few chapters or pages.",
        limit="size",
    )
