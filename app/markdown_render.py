"""Markdown answers -> Qt rich-text HTML, block by block, so streaming stays cheap. Qt-free.

The answer is cut into top-level blocks (paragraph, list, table, code block, display math...).
While it streams, every block but the growing last one is final: `StreamingMarkdown` renders it
once and from then on parses only the text after it. Code blocks become their own `Block` (the
view gives them a Copy button); LaTeX becomes readable Unicode through pylatexenc, marked as math.
Raw HTML in the model's text is shown as text, and images as links: nothing is loaded.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache

from markdown_it import MarkdownIt
from markdown_it.rules_block import StateBlock
from markdown_it.rules_core import StateCore
from markdown_it.rules_inline import StateInline
from markdown_it.token import Token
from mdit_py_plugins.dollarmath import dollarmath_plugin
from pygments import highlight
from pygments.formatters import HtmlFormatter
from pygments.lexer import Lexer
from pygments.lexers import TextLexer, get_lexer_by_name
from pygments.util import ClassNotFound

from app.latex_text import latex_to_html

LIGHT_CODE_STYLE = "friendly"
DARK_CODE_STYLE = "github-dark"
MATH_STYLE = (
    "font-family: 'STIX Two Math', 'Cambria Math', 'Times New Roman', serif; font-style: italic"
)
# Single-token block types; everything else at level 0 opens and closes around its content.
_CODE_TOKENS = ("fence", "code_block")


@dataclass(frozen=True)
class Block:
    """One rendered top-level block. `code` is set for code blocks: the text Copy puts on the
    clipboard (the view shows `html`, which is highlighted)."""

    html: str
    code: str | None = None
    language: str = ""

    @property
    def is_code(self) -> bool:
        return self.code is not None


@dataclass(frozen=True)
class StreamUpdate:
    """`finished` blocks never change again; `tail` replaces the previous tail."""

    finished: list[Block]
    tail: list[Block]


def _bracket_math_block(state: StateBlock, start: int, end: int, silent: bool) -> bool:
    r"""`\[ ... \]` on lines of its own, the way gpt-oss writes display math."""
    pos = state.bMarks[start] + state.tShift[start]
    if state.sCount[start] - state.blkIndent >= 4 or not state.src.startswith("\\[", pos):
        return False
    close = state.src.find("\\]", pos + 2)
    if close < 0:
        return False  # still streaming, or not math: a paragraph until it closes
    line = start
    while line < end and close >= state.eMarks[line]:
        line += 1
    if line >= end or state.src[close + 2 : state.eMarks[line]].strip():
        return False
    if not silent:
        token = state.push("math_block", "math", 0)
        token.block = True
        token.content = state.src[pos + 2 : close]
        token.map = [start, line + 1]  # the texmath plugin leaves this None; splitting needs it
        token.markup = "\\["
    state.line = line + 1
    return True


def _bracket_math_inline(state: StateInline, silent: bool) -> bool:
    r"""`\( ... \)` (and `\[ ... \]` inside a paragraph), before backslash escapes eat them."""
    src, pos = state.src, state.pos
    if not src.startswith(("\\(", "\\["), pos):
        return False
    closer = "\\)" if src[pos + 1] == "(" else "\\]"
    end = src.find(closer, pos + 2)
    if end <= pos + 2:
        return False
    if not silent:
        token = state.push("math_inline", "math", 0)
        token.content = src[pos + 2 : end]
        token.markup = src[pos : pos + 2]
    state.pos = end + 2
    return True


# gpt-oss cites browser lines as 【cursor†Lx-Ly】 (or 【cursor†Lx】 for one line).
CITATION = re.compile(r"【(\d{1,6})†L(\d{1,7})(?:-L?(\d{1,7}))?】")
CITATION_HREF = "cite:"
# The placeholder the view numbers: the model's text is escaped, so it cannot write this link.
CITATION_LINK = re.compile(r'<a href="cite:(\d+):(\d+):(\d+)">\[\?\]</a>')


def _split_citations(state: StateCore) -> None:
    """Cut each citation out of the text tokens into a token of its own (markdown-it's text
    rule reads 【 as plain text, so this runs after inline parsing; code spans are untouched)."""
    for block in state.tokens:
        if block.type != "inline" or not block.children or "【" not in block.content:
            continue
        children: list[Token] = []
        for child in block.children:
            if child.type != "text" or "【" not in child.content:
                children.append(child)
                continue
            pos = 0
            for found in CITATION.finditer(child.content):
                if found.start() > pos:
                    children.append(_text(child.content[pos : found.start()]))
                first = int(found.group(2))
                last = int(found.group(3)) if found.group(3) else first
                token = Token("citation", "", 0, content=found.group(0))
                token.meta = {"cursor": int(found.group(1)), "first": first, "last": last}
                children.append(token)
                pos = found.end()
            if pos < len(child.content):
                children.append(_text(child.content[pos:]))
        block.children = children


def _text(content: str) -> Token:
    return Token("text", "", 0, content=content)


def _citation_html(_renderer: object, tokens: list[Token], idx: int, *_: object) -> str:
    meta = tokens[idx].meta
    return f'<a href="{CITATION_HREF}{meta["cursor"]}:{meta["first"]}:{meta["last"]}">[?]</a>'


def _rule(method: Callable[[list[Token], int], str]) -> Callable[..., str]:
    # markdown-it binds a rule to its renderer as `self`, so our own method goes in a closure.
    def rule(_renderer: object, tokens: list[Token], idx: int, *_: object) -> str:
        return method(tokens, idx)

    return rule


@lru_cache(maxsize=64)
def _lexer(language: str) -> Lexer:
    try:
        return get_lexer_by_name(language) if language else TextLexer()
    except ClassNotFound:
        return TextLexer()


class MarkdownRenderer:
    """Renders Markdown to blocks of HTML that QLabel and QTextDocument display."""

    def __init__(self, *, dark: bool = False) -> None:
        self.dark = dark
        self._formatter = HtmlFormatter(
            nowrap=True, noclasses=True, style=DARK_CODE_STYLE if dark else LIGHT_CODE_STYLE
        )
        self._code_background = "#2b2d31" if dark else "#f0f0f3"
        # html=False: whatever HTML the model writes is shown, never interpreted by Qt.
        md = MarkdownIt("commonmark", {"html": False, "breaks": False})
        md.enable(["table", "strikethrough"])
        md.use(dollarmath_plugin, allow_space=False, allow_digits=False, double_inline=True)
        md.block.ruler.before(
            "paragraph",
            "bracket_math",
            _bracket_math_block,
            {"alt": ["paragraph", "reference", "blockquote", "list"]},
        )
        md.inline.ruler.before("escape", "bracket_math", _bracket_math_inline)
        md.core.ruler.push("citations", _split_citations)
        for name, rule in {
            "math_inline": self._math_inline,
            "math_inline_double": self._math_block,
            "math_block": self._math_block,
            "math_block_label": self._math_block,
            "fence": self._nested_code,
            "code_block": self._nested_code,
            "code_inline": self._code_inline,
            "table_open": self._table_open,
            "image": self._image,
        }.items():
            md.add_render_rule(name, _rule(rule))
        md.add_render_rule("citation", _citation_html)
        self._md = md

    # -- whole texts ---------------------------------------------------------------------

    def render(self, text: str) -> list[Block]:
        """Every block of `text`, final."""
        tokens = self._md.parse(text)
        return [self.render_group(tokens[a:b]) for a, b, _ in _groups(tokens)]

    def code_html(self, code: str, language: str) -> str:
        body = highlight(code, _lexer(language.strip().lower()), self._formatter).rstrip("\n")
        return f'<pre style="margin: 0">{body}</pre>'

    # -- pieces used by StreamingMarkdown --------------------------------------------------

    def parse(self, text: str) -> list[Token]:
        return self._md.parse(text)

    def render_group(self, tokens: Sequence[Token]) -> Block:
        first = tokens[0]
        if len(tokens) == 1 and first.type in _CODE_TOKENS:
            language = first.info.strip().split(" ")[0] if first.info else ""
            return Block(self.code_html(first.content, language), first.content, language)
        return Block(self._md.renderer.render(list(tokens), self._md.options, {}))

    # -- render rules (markdown-it calls them with the renderer as `self`) ---------------

    def _math_inline(self, tokens: list[Token], idx: int) -> str:
        return (
            f'<span class="math" style="{MATH_STYLE}">{latex_to_html(tokens[idx].content)}</span>'
        )

    def _math_block(self, tokens: list[Token], idx: int) -> str:
        rendered = latex_to_html(tokens[idx].content.strip())
        return f'<p class="math" align="center" style="{MATH_STYLE}">{rendered}</p>\n'

    def _nested_code(self, tokens: list[Token], idx: int) -> str:
        token = tokens[idx]
        language = token.info.strip().split(" ")[0] if token.info else ""
        return self.code_html(token.content, language) + "\n"

    def _code_inline(self, tokens: list[Token], idx: int) -> str:
        text = html.escape(tokens[idx].content)
        return f'<code style="background-color: {self._code_background}">{text}</code>'

    def _table_open(self, _tokens: list[Token], _idx: int) -> str:
        # QTextDocument ignores CSS borders on tables; the attributes are what it reads.
        return (
            '<table border="1" cellspacing="0" cellpadding="5" style="border-collapse: collapse">\n'
        )

    def _image(self, tokens: list[Token], idx: int) -> str:
        token = tokens[idx]
        alt = html.escape(token.content or "image")
        src = html.escape(str(token.attrGet("src") or ""), quote=True)
        return f'<a href="{src}">[{alt}]</a>' if src else f"[{alt}]"


def _groups(tokens: Sequence[Token]) -> list[tuple[int, int, int]]:
    """Top-level blocks as (first token, end token, first source line)."""
    groups: list[tuple[int, int, int]] = []
    i = 0
    while i < len(tokens):
        token = tokens[i]
        start_line = token.map[0] if token.map else (groups[-1][2] if groups else 0)
        j = i + 1
        if token.nesting == 1:  # runs to its closing token, the next one back at level 0
            while j < len(tokens) and not (tokens[j].level == 0 and tokens[j].nesting == -1):
                j += 1
            j += 1
        groups.append((i, j, start_line))
        i = j
    return groups


def _line_starts(text: str) -> list[int]:
    return [0, *(m.end() for m in re.finditer("\n", text))]


class StreamingMarkdown:
    """A growing Markdown text rendered incrementally: see the module docstring.

    A block is final once the block after it has a complete first line; until then a list item
    or table row that is still arriving could belong to it.
    """

    def __init__(self, renderer: MarkdownRenderer) -> None:
        self._renderer = renderer
        self._text = ""
        self._stable = 0  # text[:_stable] is rendered into finished blocks

    @property
    def text(self) -> str:
        return self._text

    @property
    def pending_chars(self) -> int:
        """How much text each update parses: everything after the last finished block."""
        return len(self._text) - self._stable

    def append(self, delta: str) -> StreamUpdate:
        # markdown-it counts lines by "\n" only, and so must the offsets below.
        self._text += delta.replace("\r\n", "\n").replace("\r", "\n")
        chunk = self._text[self._stable :]
        tokens = self._renderer.parse(chunk)
        groups = _groups(tokens)
        starts = _line_starts(chunk)
        keep = 1
        if len(groups) >= 2 and groups[-1][2] + 1 >= len(starts):
            keep = 2  # the last block's first line is incomplete: the one before may grow
        done = groups[: max(0, len(groups) - keep)]
        render = self._renderer.render_group
        finished = [render(tokens[a:b]) for a, b, _ in done]
        if done:
            self._stable += starts[groups[len(done)][2]]
        tail = [render(tokens[a:b]) for a, b, _ in groups[len(done) :]]
        return StreamUpdate(finished, tail)

    def finish(self) -> list[Block]:
        """The rest of the text as final blocks; the stream is then complete."""
        blocks = self._renderer.render(self._text[self._stable :])
        self._stable = len(self._text)
        return blocks


def plain_summary(markdown: str, limit: int = 120) -> str:
    """One line of an answer for accessibility announcements and tooltips."""
    text = re.sub(r"[#*_`>|\\$]+", "", markdown)
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
