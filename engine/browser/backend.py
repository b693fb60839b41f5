"""The browser's backend over the document library: search results and document pages as Pages.

Plays the part of the reference browser's web `Backend` (search, fetch), but nothing here touches
the network: a URL that is not a `file://` URL of a document in the library (or in the chat's
documents, when the search is scoped to them) is refused with a message for the model.

A search result is a link `【i†{document}, page N†{folder}】` followed by a snippet; the folder
plays the part a domain plays on the web (where the result comes from). `open(id=i)` goes to the
page and scrolls to the passage that matched.
"""

from __future__ import annotations

from collections.abc import Collection
from typing import Protocol

from engine.browser.page import Page, Snippet
from engine.browser.urls import page_url, parse_page_url
from engine.library import DocumentInfo, Library, LibraryError, clean_page_text

LOCAL_SOURCE = "local_documents"
SEARCH_HEADING = "# Search Results"


class BackendError(Exception):
    """A search or fetch failed; the text is what the model reads (after the tool's prefix)."""


class Backend(Protocol):
    source: str

    def search(self, query: str, topn: int) -> Page: ...

    def fetch(self, url: str) -> Page: ...


def page_title(document: DocumentInfo, number: int) -> str:
    """`report.pdf, page 12`, `notes.md, section 3 of 9`, or just `notes.md` if it is one page."""
    name = _link_safe(document.name)
    if document.paged:
        return f"{name}, page {number}"
    if document.pages_total > 1:
        return f"{name}, section {number} of {document.pages_total}"
    return name


def document_page(document: DocumentInfo, number: int, text: str) -> Page:
    url = page_url(document.path, number, paged=document.paged, pages_total=document.pages_total)
    return Page(url=url, title=page_title(document, number), text=text, kind="document")


class LibraryBackend:
    """Serves the library, or only `document_ids` (the documents attached to one chat)."""

    def __init__(
        self,
        library: Library,
        document_ids: Collection[int] | None = None,
        *,
        source: str = LOCAL_SOURCE,
    ) -> None:
        self.library = library
        self.document_ids = None if document_ids is None else frozenset(document_ids)
        self.source = source

    def search(self, query: str, topn: int) -> Page:
        try:
            if not self.library.has_searchable(self.document_ids):
                raise BackendError(self._nothing_to_search())
            hits = self.library.search(query, limit=topn, document_ids=self.document_ids)
        except LibraryError as e:
            raise BackendError(str(e)) from e
        # A file deleted since it was indexed cannot be opened, so it is not offered.
        hits = [h for h in hits if h.document.path.is_file()]
        items, urls, snippets = [], {}, {}
        for i, hit in enumerate(hits):
            page = document_page(hit.document, hit.page, "")
            where = _link_safe(hit.document.path.parent.name) or "local"
            items.append(f"  * 【{i}†{page.title}†{where}】 {clean_page_text(hit.snippet)}")
            urls[str(i)] = page.url
            snippets[str(i)] = Snippet(
                url=page.url,
                text=hit.snippet,
                title=page.title,
                line_idx=hit.match_line,
                line_end=hit.last_line,
            )
        body = "\n".join(items) if items else f"No documents match `{query}`."
        return Page(
            url="",
            title=query,
            text=f"{SEARCH_HEADING}\n\n{body}",
            kind="search",
            urls=urls,
            snippets=snippets,
        )

    def fetch(self, url: str) -> Page:
        address = parse_page_url(url)
        if address is None:
            raise BackendError(
                "only the user's documents (file:// URLs from search results) can be opened; "
                "there is no internet access"
            )
        try:
            document = self.library.document_by_path(address.path)
            in_scope = document is not None and (
                self.document_ids is None or document.id in self.document_ids
            )
            if document is None or not in_scope:
                raise BackendError(f"{address.path.name} is not among the documents available")
            if not document.path.is_file():
                raise BackendError(
                    f"{document.name} was deleted or moved after it was indexed, so it cannot be "
                    "opened"
                )
            stored = self.library.page(document.id, address.number)
        except LibraryError as e:
            raise BackendError(str(e)) from e
        if stored is None:
            unit = "pages" if document.paged else "sections"
            raise BackendError(
                f"{document.name} has {document.pages_done} {unit}; there is no number "
                f"{address.number}"
            )
        # A `view-source:` URL gets the same page: a document's text is its own source.
        return document_page(document, address.number, stored.text)

    def _nothing_to_search(self) -> str:
        if self.document_ids is not None:
            return "no documents attached to this chat can be searched yet"
        return "the document library is empty: the user has not added any documents"


def _link_safe(text: str) -> str:
    # The dagger separates a link's parts and the brackets delimit it, so neither may appear.
    return clean_page_text(text).replace("†", "‡")
