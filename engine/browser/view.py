"""One browser display: a header, a scrollbar line and a window of numbered lines.

The text is exactly what gpt-oss's reference browser (`SimpleBrowserTool`) shows for the same
page, which is the format the model was trained to read and to cite:

    [{cursor}] {title} ({url})
    **viewing lines [{first} - {last}] of {last line of the page}**

    L{first}: ...

Without `num_lines`, a view runs from `loc` until about `view_tokens` tokens of numbered text.
"""

from __future__ import annotations

from urllib.parse import unquote

from engine.browser.page import Page
from engine.browser.tokens import ViewCounter
from engine.library.lines import numbered

VIEW_TOKENS = 1024
MAX_URL_CHARS = 1024


class ViewError(Exception):
    """`loc` lies past the page's end; the text is the tool error the model sees."""


def truncate(text: str, limit: int = MAX_URL_CHARS) -> str:
    """At most `limit` characters, the last three "..." when cut (the reference's rule)."""
    return text if len(text) <= limit else text[: limit - 3] + "..."


def view_end(
    lines: list[str], loc: int, num_lines: int, view_tokens: int, counter: ViewCounter
) -> int:
    """The line after the last one shown."""
    total = len(lines)
    if num_lines > 0:
        return min(loc + num_lines, total)
    text = numbered(lines[loc:], first=loc)
    # One character per token at least: text this short fits without counting.
    if len(text) <= view_tokens:
        return total
    window = text[: (view_tokens + 1) * counter.longest_token()]
    cut = counter.char_offset_of_token(window, view_tokens)
    if cut is None:
        return total
    # The line holding the first token past the budget is shown whole.
    return min(loc + text[:cut].count("\n") + 1, total)


def render(
    page: Page,
    cursor: int,
    loc: int,
    num_lines: int,
    counter: ViewCounter,
    view_tokens: int = VIEW_TOKENS,
) -> str:
    """The display of `page` from line `loc`; ViewError if `loc` is past the last line."""
    lines = page.lines
    if loc >= len(lines):
        raise ViewError(
            f"Invalid location parameter: `{loc}`. Cannot exceed page maximum of {len(lines) - 1}."
        )
    end = view_end(lines, loc, num_lines, view_tokens, counter)
    location = truncate(unquote(page.url))
    header = page.title + (f" ({location})" if location else "")
    scrollbar = f"**viewing lines [{loc} - {end - 1}] of {len(lines) - 1}**"
    return f"[{cursor}] {header}\n{scrollbar}\n\n{numbered(lines[loc:end], first=loc)}"
