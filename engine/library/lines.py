"""A page's text as the numbered lines the browser tool shows: the one place lines are defined.

Citations (`【3†L9-L11】`), `open(loc=...)`, `find` and the passages the index ranks all count the
same lines, so the library stores page text once and every reader wraps it with `wrap_lines`.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Sequence

# gpt-oss's browser wraps pages at 80 columns; its line numbers are counted after wrapping.
LINE_WIDTH = 80

# Characters the model reads as tool syntax (link and citation brackets) or that the reference
# browser swaps for look-alikes, so a document cannot forge a link or a citation.
_LOOKALIKES = {"【": "〖", "】": "〗", "◼": "◾", "\u200b": ""}
_LOOKALIKE_RE = re.compile("|".join(map(re.escape, _LOOKALIKES)))


def clean_page_text(text: str) -> str:
    """Document text made safe to show inside the browser's markup."""
    return _LOOKALIKE_RE.sub(lambda m: _LOOKALIKES[m.group(0)], text)


def wrap_lines(text: str, width: int = LINE_WIDTH) -> list[str]:
    """Each source line cut into pieces of at most `width` characters; empty lines are kept.

    Whitespace is kept as is (only tabs are expanded), so the pieces of a line join back to it.
    """
    wrapped: list[str] = []
    for line in text.split("\n"):
        if not line:
            wrapped.append("")
            continue
        wrapped.extend(
            textwrap.wrap(line, width=width, replace_whitespace=False, drop_whitespace=False)
        )
    return wrapped


def numbered(lines: Sequence[str], first: int = 0) -> str:
    """`L{n}: line` for each line, numbering from `first`, one per row."""
    return "\n".join(f"L{n}: {line}" for n, line in enumerate(lines, start=first))


def merge_whitespace(text: str) -> str:
    """All runs of whitespace (newlines included) as one space."""
    return " ".join(text.split())
