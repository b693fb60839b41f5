"""OpenAI's reference SimpleBrowserTool, fed the same pages as ours, for conformance tests."""

from __future__ import annotations

import asyncio
from typing import Any

import chz
from gpt_oss.tools.simple_browser import SimpleBrowserTool
from gpt_oss.tools.simple_browser.backend import Backend as ReferenceBackend
from gpt_oss.tools.simple_browser.page_contents import Extract, PageContents

from engine.browser import Backend, BackendError, BrowserSession, Page
from engine.tokenizer import HarmonyTokenizer


def page_contents(page: Page) -> PageContents:
    snippets = None
    if page.snippets is not None:
        snippets = {
            k: Extract(url=s.url, text=s.text, title=s.title, line_idx=s.line_idx)
            for k, s in page.snippets.items()
        }
    return PageContents(
        url=page.url, title=page.title, text=page.text, urls=dict(page.urls), snippets=snippets
    )


class Recorder:
    """Our backend, remembering each search's page so the reference can be served the same."""

    def __init__(self, inner: Backend) -> None:
        self.inner = inner
        self.source = inner.source
        self.searches: dict[str, Page] = {}

    def search(self, query: str, topn: int) -> Page:
        page = self.inner.search(query, topn)
        self.searches[query] = page
        return page

    def fetch(self, url: str) -> Page:
        return self.inner.fetch(url)


@chz.chz
class Mirror(ReferenceBackend):
    """A reference backend serving our pages; our errors become its exceptions."""

    recorder: Any = chz.field(default=None)

    async def search(self, query: str, topn: int, session: Any) -> PageContents:
        return page_contents(self.recorder.searches[query])

    async def fetch(self, url: str, session: Any) -> PageContents:
        try:
            return page_contents(self.recorder.fetch(url))
        except BackendError as e:
            raise RuntimeError(str(e)) from e


class Pair:
    """Our session and the reference tool, driven in lockstep with the same calls."""

    def __init__(self, backend: Backend, tokenizer: HarmonyTokenizer, view_tokens: int) -> None:
        self.recorder = Recorder(backend)
        self.ours = BrowserSession(self.recorder, tokenizer, view_tokens=view_tokens)
        self.reference = SimpleBrowserTool(
            backend=Mirror(source=backend.source, recorder=self.recorder),
            view_tokens=view_tokens,
        )

    def call(self, function: str, **kwargs: Any) -> tuple[str, str]:
        ours = getattr(self.ours, function)(**kwargs).text
        return ours, self.reference_call(function, **kwargs)

    def reference_call(self, function: str, **kwargs: Any) -> str:
        async def run() -> list[Any]:
            return [m async for m in getattr(self.reference, function)(**kwargs)]

        [message] = asyncio.run(run())
        text: str = message.content[0].text
        return text
