"""`file://` URLs for document pages: `#page=N` for PDF pages (what PDF viewers open at),
`#section=N` for sections of other documents, no fragment for a one-section document."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

VIEW_SOURCE_PREFIX = "view-source:"
_FRAGMENT = re.compile(r"(page|section)=(\d+)")


@dataclass(frozen=True)
class PageAddress:
    path: Path
    number: int  # 1-based page or section


def page_url(path: Path, number: int, *, paged: bool, pages_total: int) -> str:
    base = path.as_uri()
    if paged:
        return f"{base}#page={number}"
    return f"{base}#section={number}" if pages_total > 1 else base


def parse_page_url(url: str) -> PageAddress | None:
    """The document page a `file://` URL (or an absolute path) names; None for anything else."""
    url = url.removeprefix(VIEW_SOURCE_PREFIX)
    if url.startswith("/"):
        url = "file://" + url
    try:
        parts = urlsplit(url)
    except ValueError:
        return None
    if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost") or not parts.path:
        return None
    number = 1
    if parts.fragment:
        found = _FRAGMENT.fullmatch(parts.fragment)
        if found is None:
            return None
        number = int(found.group(2))
    return PageAddress(Path(unquote(parts.path)), number)
