"""What the browser tool shows: a page of text with numbered links, as gpt-oss's browser models it.

Fields mirror the reference `PageContents` (url, title, text, urls, snippets), so a page can be
handed to OpenAI's reference tool unchanged, plus `kind` and each snippet's last line, which
citation resolution needs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Literal

from engine.library.lines import wrap_lines

PageKind = Literal["document", "search", "find"]


@dataclass(frozen=True)
class Snippet:
    """Where link `id` of a results page points: `line_idx` is the line `open(id)` scrolls to."""

    url: str
    text: str
    title: str
    line_idx: int | None = None
    line_end: int | None = None  # last line of the passage on the target page (ours)


@dataclass(frozen=True)
class Page:
    url: str
    title: str
    text: str
    kind: PageKind
    urls: dict[str, str] = field(default_factory=dict)  # link id -> url
    # None on document pages; results pages (search, find) have one per link; `find` refuses those.
    snippets: dict[str, Snippet] | None = None

    @cached_property
    def lines(self) -> list[str]:
        """The page as the numbered lines the model sees (80 columns)."""
        return wrap_lines(self.text)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, so a conversation can keep its browser pages (and citations) across runs."""
        snippets = None
        if self.snippets is not None:
            snippets = {k: vars(s).copy() for k, s in self.snippets.items()}
        return {
            "url": self.url,
            "title": self.title,
            "text": self.text,
            "kind": self.kind,
            "urls": dict(self.urls),
            "snippets": snippets,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Page:
        snippets = data.get("snippets")
        return cls(
            url=str(data["url"]),
            title=str(data["title"]),
            text=str(data["text"]),
            kind=data["kind"],
            urls={str(k): str(v) for k, v in data.get("urls", {}).items()},
            snippets=None
            if snippets is None
            else {str(k): Snippet(**v) for k, v in snippets.items()},
        )
