"""gpt-oss's `browser` tool served over the user's own documents, offline. Qt-free.

`BrowserSession` answers browser.search/open/find calls with the exact text OpenAI's reference
browser shows (numbered lines, `[cursor]` headers, `【id†title†where】` links), backed by the
document library (engine.library) through `LibraryBackend`, and resolves the citations
`【cursor†Lx-Ly】` of an answer to a document, a page and lines.
"""

from engine.browser.arguments import DEFAULT_TOPN
from engine.browser.backend import (
    LOCAL_SOURCE,
    Backend,
    BackendError,
    LibraryBackend,
    document_page,
    page_title,
)
from engine.browser.citations import Citation, CitedLines, find_citations
from engine.browser.find import FIND_SHOWN_LINES, MAX_FIND_RESULTS, find_in_page
from engine.browser.page import Page, PageKind, Snippet
from engine.browser.session import MAX_SEARCH_RESULTS, BrowserSession, ToolOutput
from engine.browser.tokens import TokenEncoder, ViewCounter
from engine.browser.urls import PageAddress, page_url, parse_page_url
from engine.browser.view import VIEW_TOKENS, render

__all__ = [
    "DEFAULT_TOPN",
    "FIND_SHOWN_LINES",
    "LOCAL_SOURCE",
    "MAX_FIND_RESULTS",
    "MAX_SEARCH_RESULTS",
    "VIEW_TOKENS",
    "Backend",
    "BackendError",
    "BrowserSession",
    "Citation",
    "CitedLines",
    "LibraryBackend",
    "Page",
    "PageAddress",
    "PageKind",
    "Snippet",
    "TokenEncoder",
    "ToolOutput",
    "ViewCounter",
    "document_page",
    "find_citations",
    "find_in_page",
    "page_title",
    "page_url",
    "parse_page_url",
    "render",
]
