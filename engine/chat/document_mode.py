"""Per turn: do the attached documents go into the message whole, or does the model search them?

Documents that fit the context budget are read whole ("full_text", as before: their blocks go
into the user message). Otherwise, or when the user asks to search, the turn "browse"s: the
documents are indexed into the library, the system message gains gpt-oss's `browser` tool, and
the user message names the documents the model can search, so it reads them the way it was
trained to (search, open, find) and cites lines. Qt-free; the indexing blocks, so run
`index_for_browsing` on a worker thread.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TypeAlias

from engine.browser import (
    LOCAL_SOURCE,
    VIEW_TOKENS,
    BrowserSession,
    LibraryBackend,
    TokenEncoder,
)
from engine.documents.document import ExtractedDocument
from engine.documents.prompt import FitReport, check_fits, compose_user_message
from engine.harmony import SystemContent
from engine.library import IndexProgress, Library, canonical, index_files

DocumentMode: TypeAlias = Literal["full_text", "browse"]
BROWSER_NAMESPACE = "browser"


@dataclass(frozen=True)
class AttachedDocument:
    """A document attached to the message, with the tokens its whole block takes."""

    document: ExtractedDocument
    tokens: int


@dataclass(frozen=True)
class DocumentDecision:
    """How this turn reads its documents, and the one line the app shows about it."""

    mode: DocumentMode
    note: str
    fit: FitReport | None  # None without documents
    documents: tuple[AttachedDocument, ...] = ()

    @property
    def names(self) -> tuple[str, ...]:
        return tuple(d.document.name for d in self.documents)


def decide_document_mode(
    documents: Sequence[AttachedDocument],
    *,
    prompt_tokens: int,
    context_budget: int,
    search_requested: bool = False,
) -> DocumentDecision:
    """Full text when every document fits next to the conversation (`prompt_tokens`) within
    `context_budget` (the context minus room to answer), else browse; `search_requested` (the
    user asked to search the library) browses whatever the sizes."""
    docs = tuple(documents)
    if not docs:
        if search_requested:
            return DocumentDecision("browse", "The model will search your document library.", None)
        return DocumentDecision("full_text", "", None)
    total = sum(d.tokens for d in docs)
    name = docs[0].document.name if len(docs) == 1 else f"The {len(docs)} documents"
    fit = check_fits(total, prompt_tokens, context_budget, name=name)
    if fit.fits and not search_requested:
        return DocumentDecision("full_text", _read_whole_note(docs, total), fit, docs)
    return DocumentDecision("browse", _browse_note(docs, fit, search_requested), fit, docs)


def _read_whole_note(docs: Sequence[AttachedDocument], total: int) -> str:
    if len(docs) == 1:
        return f"{docs[0].document.name} is read whole ({total:,} tokens)."
    return f"{len(docs)} documents are read whole ({total:,} tokens)."


def _browse_note(docs: Sequence[AttachedDocument], fit: FitReport, requested: bool) -> str:
    if requested:
        return f"The model will search {_names(docs)} instead of reading them whole."
    if len(docs) == 1:
        d = docs[0]
        what = (
            "is too long to read whole"
            if d.tokens > fit.context_budget
            else "does not fit next to this conversation"
        )
        return f"{d.document.name} {what} ({d.tokens:,} tokens): the model will search it."
    return (
        f"{_names(docs)} are too long to read whole ({fit.doc_tokens:,} tokens together): "
        "the model will search them."
    )


def _names(docs: Sequence[AttachedDocument]) -> str:
    names = [d.document.name for d in docs]
    return names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]


def compose_turn_message(text: str, decision: DocumentDecision) -> str:
    """The user message for the decided mode: documents inline (full text), or a line naming
    the documents the model can search with the browser tool."""
    if decision.mode == "full_text":
        return compose_user_message(text, [d.document for d in decision.documents])
    if not decision.documents:
        lead = "Search my document library with the browser tool to answer."
    else:
        names = "; ".join(_describe(d.document) for d in decision.documents)
        lead = (
            f"Attached (too long to include, searchable with the browser tool): {names}. "
            "Search them, open what you need, and cite the lines you use."
        )
    return f"{lead}\n\n{text}" if text.strip() else lead


def _describe(doc: ExtractedDocument) -> str:
    pages = f", {doc.pages:,} pages" if doc.pages else ""
    return f"{doc.name} ({doc.kind}{pages})"


def with_browser(system: SystemContent, browser: BrowserSession) -> SystemContent:
    """`system` declaring the browser tool, once: a second call leaves it as it is, so enabling
    it every turn keeps the prompt (and the KV cache prefix) unchanged."""
    if any(ns.name == BROWSER_NAMESPACE for ns in system.tools):
        return system
    return system.with_tools(browser.namespace())


def index_for_browsing(
    library: Library,
    documents: Sequence[ExtractedDocument],
    *,
    progress: Callable[[IndexProgress], None] | None = None,
    cancel: threading.Event | None = None,
) -> tuple[list[int], dict[Path, str]]:
    """Index the attached documents (already extracted: their text is reused, not read again)
    and return their library ids, plus {path: message} for those that could not be indexed."""
    extracted = {canonical(d.path): d for d in documents}

    def reuse(path: Path) -> ExtractedDocument:
        return extracted[canonical(path)]

    report = index_files(library, extracted, progress=progress, cancel=cancel, extractor=reuse)
    ids = []
    for path in extracted:
        info = library.document_by_path(path)
        if info is not None and info.searchable:
            ids.append(info.id)
    return ids, dict(report.failed)


def browser_for(
    library: Library,
    document_ids: Sequence[int] | None,
    tokenizer: TokenEncoder,
    *,
    view_tokens: int = VIEW_TOKENS,
) -> BrowserSession:
    """A browser over these documents (None: the whole library), served offline; each view
    shows at most `view_tokens` tokens."""
    backend = LibraryBackend(library, document_ids, source=LOCAL_SOURCE)
    return BrowserSession(backend, tokenizer, view_tokens=view_tokens)
