"""BrowserSession: gpt-oss's `browser` tool (search, open, find) for one conversation.

Every call that shows something pushes a page on a stack; its index is the cursor printed as
`[cursor]` and used in citations `【cursor†L9-L11】`. The texts returned (pages and error
messages) are those of OpenAI's reference `SimpleBrowserTool`, checked byte for byte by
tests/engine/browser/test_conformance.py. Deliberate differences, all where the reference is
wrong or has no answer:
- `topn` is honoured (1 to `max_search_results`); the reference always asks its backend for 20.
- Each cursor keeps the page it showed. The reference stores pages by URL, so after a second
  search an old search's cursor shows the newest results (all search pages have the URL "").
- Arguments of the wrong type are an error text, where the reference raises; unknown argument
  names are ignored.

Not thread-safe: use a session from one thread (the engine's), with a Library opened on that
thread. Calls block on SQLite reads, which take milliseconds.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from engine.browser import arguments as a
from engine.browser.backend import Backend, BackendError
from engine.browser.citations import Citation, CitedLines, find_citations, resolve
from engine.browser.find import find_in_page
from engine.browser.page import Page
from engine.browser.tokens import TokenEncoder, ViewCounter
from engine.browser.urls import VIEW_SOURCE_PREFIX
from engine.browser.view import VIEW_TOKENS, ViewError, render, truncate
from engine.harmony.builtin_tools import browser_namespace
from engine.harmony.conversation import ToolNamespace

MAX_SEARCH_RESULTS = 20
# open(id) from a results page scrolls to a little above the passage, as the reference does.
_CONTEXT_ABOVE = 4


class UsageError(Exception):
    """A call the tool cannot carry out (bad cursor, link id, loc); the text goes to the model."""


@dataclass(frozen=True)
class ToolOutput:
    """The tool message's text; `cursor` is the page it shows, None when `error`."""

    text: str
    cursor: int | None
    error: bool = False


class BrowserSession:
    def __init__(
        self,
        backend: Backend,
        tokenizer: TokenEncoder,
        *,
        view_tokens: int = VIEW_TOKENS,
        max_search_results: int = MAX_SEARCH_RESULTS,
        pages: list[Page] | None = None,
    ) -> None:
        self.backend = backend
        self.view_tokens = view_tokens
        self.max_search_results = max_search_results
        self._counter = ViewCounter(tokenizer)
        self._stack: list[Page] = []
        self._by_url: dict[str, Page] = {}  # the latest page seen at each URL
        for page in pages or ():
            self._push(page)

    @property
    def pages(self) -> list[Page]:
        """The page stack, by cursor."""
        return list(self._stack)

    def warm_up(self) -> None:
        """Measure the tokenizer's longest token now (~0.5 s, once per tokenizer and process)
        rather than in the first view of a long page."""
        self._counter.longest_token()

    def namespace(self) -> ToolNamespace:
        """The `browser` tool declaration for the system message."""
        return browser_namespace(source=self.backend.source)

    def to_state(self) -> dict[str, Any]:
        return {"pages": [page.to_dict() for page in self._stack]}

    @classmethod
    def from_state(
        cls, state: dict[str, Any], backend: Backend, tokenizer: TokenEncoder, **kwargs: Any
    ) -> BrowserSession:
        pages = [Page.from_dict(p) for p in state.get("pages", [])]
        return cls(backend, tokenizer, pages=pages, **kwargs)

    # The model's entry point

    def call(self, function: str, arguments: str) -> ToolOutput:
        """Run `browser.<function>` with the JSON `arguments` the model wrote."""
        name = function.removeprefix("browser.")
        args = a.parse_arguments(arguments)
        if args is None:
            return ToolOutput(a.INVALID_ARGUMENTS, None, error=True)
        if name not in a.FUNCTIONS:
            return ToolOutput(a.unknown_function(name), None, error=True)
        try:
            if name == "search":
                s = a.search_args(args)
                return self.search(s.query, s.topn)
            if name == "open":
                o = a.open_args(args)
                return self.open(o.id, o.cursor, o.loc, o.num_lines, o.view_source)
            f = a.find_args(args)
            return self.find(f.pattern, f.cursor)
        except a.ArgumentError as e:
            return ToolOutput(str(e), None, error=True)

    def search(self, query: str, topn: int = a.DEFAULT_TOPN) -> ToolOutput:
        def run() -> ToolOutput:
            wanted = min(max(topn, 1), self.max_search_results)
            try:
                results = self.backend.search(query, wanted)
            except BackendError as e:
                raise BackendError(f"Error during search for `{query}`: {truncate(str(e))}") from e
            return self._show_new(results, loc=0, num_lines=-1)

        return self._guarded(run)

    def open(
        self,
        id: int | str = -1,
        cursor: int = -1,
        loc: int = -1,
        num_lines: int = -1,
        view_source: bool = False,
    ) -> ToolOutput:
        def run() -> ToolOutput:
            nonlocal loc
            snippet = None
            refresh = isinstance(id, str)  # a URL typed by the model is always fetched anew
            scroll_only = False  # no link followed: the page at `cursor` is shown again
            current: Page | None = None
            if isinstance(id, str):
                url = id
            else:
                current = self._page(cursor)
                if id >= 0:
                    if str(id) not in current.urls:
                        raise UsageError(f"Invalid link id `{id}`.")
                    url = current.urls[str(id)]
                    snippet = (current.snippets or {}).get(str(id))
                else:
                    url, scroll_only = current.url, not view_source
            if view_source:
                url, snippet = VIEW_SOURCE_PREFIX + url, None
            page = current if current is not None and scroll_only else self._fetch(url, refresh)
            if loc < 0:
                loc = 0
                if snippet is not None and snippet.line_idx is not None:
                    line = snippet.line_idx
                    loc = line - _CONTEXT_ABOVE if line > _CONTEXT_ABOVE else line
            return self._show_new(page, loc, num_lines)

        return self._guarded(run)

    def find(self, pattern: str, cursor: int = -1) -> ToolOutput:
        def run() -> ToolOutput:
            page = self._page(cursor)
            if page.snippets is not None:
                raise UsageError("Cannot run `find` on search results page or find results page")
            return self._show_new(find_in_page(page, pattern), loc=0, num_lines=-1)

        return self._guarded(run)

    # Citations in the model's answer

    def resolve_citation(self, cursor: int, first_line: int, last_line: int) -> CitedLines | None:
        """The document, page and lines that `【cursor†L{first_line}-L{last_line}】` cites."""
        return resolve(self._stack, cursor, first_line, last_line, self._page_for_citation)

    def resolve_citations(self, answer: str) -> list[tuple[Citation, CitedLines | None]]:
        """Every citation in `answer`, in order, with where it points (None: nowhere)."""
        return [
            (c, self.resolve_citation(c.cursor, c.first_line, c.last_line))
            for c in find_citations(answer)
        ]

    # Internals

    def _page_for_citation(self, url: str) -> Page | None:
        if url in self._by_url:
            return self._by_url[url]
        try:
            return self.backend.fetch(url)
        except BackendError:
            return None

    def _guarded(self, run: Callable[[], ToolOutput]) -> ToolOutput:
        try:
            return run()
        except (UsageError, BackendError, ViewError) as e:
            return ToolOutput(str(e), None, error=True)

    def _page(self, cursor: int) -> Page:
        if not self._stack:
            raise UsageError("No pages to access!")
        last = len(self._stack) - 1
        if cursor in (-1, last):
            return self._stack[-1]
        try:
            return self._stack[cursor]  # other negative cursors count back from the top
        except IndexError:
            raise UsageError(
                f"Cursor `{cursor}` is out of range. Available cursor indices: [0 - {last}]."
            ) from None

    def _fetch(self, url: str, refresh: bool) -> Page:
        if not refresh and url in self._by_url:
            return self._by_url[url]
        try:
            return self.backend.fetch(url)
        except BackendError as e:
            raise BackendError(f"Error fetching URL `{truncate(url)}`: {truncate(str(e))}") from e

    def _push(self, page: Page) -> None:
        self._stack.append(page)
        self._by_url[page.url] = page

    def _show_new(self, page: Page, loc: int, num_lines: int) -> ToolOutput:
        """Push `page` and show it; a bad `loc` takes it off the stack again."""
        self._push(page)
        cursor = len(self._stack) - 1
        try:
            text = render(page, cursor, loc, num_lines, self._counter, self.view_tokens)
        except ViewError:
            self._stack.pop()
            raise
        return ToolOutput(text, cursor)
