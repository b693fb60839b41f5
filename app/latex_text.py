"""LaTeX math -> readable Unicode HTML (∫, α, ½ ...) with pylatexenc. Qt-free.

A full TeX renderer would need a web view or a font engine; gpt-oss writes mostly formulas that
read well as Unicode, with sub- and superscripts as <sub>/<sup>, which Qt's rich text shows.
"""

from __future__ import annotations

import html
import logging
import re
from functools import lru_cache

from pylatexenc.latex2text import LatexNodes2Text, MacroTextSpec, get_default_latex_context_db
from pylatexenc.latexwalker import LatexWalker, LatexWalkerError
from pylatexenc.latexwalker import get_default_latex_context_db as walker_context_db
from pylatexenc.macrospec import MacroSpec

log = logging.getLogger(__name__)

# Private-use markers survive pylatexenc untouched and cannot come from escaped text.
_SUP_OPEN, _SUP_CLOSE, _SUB_OPEN, _SUB_CLOSE = "\ue000", "\ue001", "\ue002", "\ue003"
_MARKERS = {_SUP_OPEN: "<sup>", _SUP_CLOSE: "</sup>", _SUB_OPEN: "<sub>", _SUB_CLOSE: "</sub>"}
# ^{...} / _{...} become macros (braces stay balanced); ^x / _\alpha get braces first.
_SCRIPT_GROUP = re.compile(r"(?<!\\)([\^_])\{")
_SCRIPT_SINGLE = re.compile(r"(?<!\\)([\^_])(\\[A-Za-z]+|[^\s{}\\])")


def _frac(node: object, l2tobj: LatexNodes2Text) -> str:
    args = getattr(getattr(node, "nodeargd", None), "argnlist", None) or []
    parts = [l2tobj.nodelist_to_text([a]).strip() if a is not None else "" for a in args[-2:]]
    if len(parts) != 2:
        return "/".join(parts)
    # Without parentheses a/b+c would read as a different formula.
    wrapped = [p if len(p) <= 1 or p.isalnum() else f"({p})" for p in parts]
    return f"{wrapped[0]}/{wrapped[1]}"


@lru_cache(maxsize=1)
def _converter() -> tuple[object, LatexNodes2Text]:
    walker_db = walker_context_db().filter_context()
    walker_db.add_context_category(
        "oss-desk-scripts",
        prepend=True,
        macros=[MacroSpec("ossdsup", "{"), MacroSpec("ossdsub", "{")],
    )
    text_db = get_default_latex_context_db().filter_context()
    text_db.add_context_category(
        "oss-desk-scripts",
        prepend=True,
        macros=[
            MacroTextSpec("ossdsup", simplify_repl=f"{_SUP_OPEN}%s{_SUP_CLOSE}"),
            MacroTextSpec("ossdsub", simplify_repl=f"{_SUB_OPEN}%s{_SUB_CLOSE}"),
            MacroTextSpec("frac", simplify_repl=_frac),
            MacroTextSpec("dfrac", simplify_repl=_frac),
            MacroTextSpec("tfrac", simplify_repl=_frac),
        ],
    )
    return walker_db, LatexNodes2Text(
        latex_context=text_db, math_mode="text", strict_latex_spaces=False
    )


def _scripts_as_macros(tex: str) -> str:
    tex = _SCRIPT_SINGLE.sub(r"\1{\2}", tex)
    return _SCRIPT_GROUP.sub(lambda m: "\\ossdsup{" if m.group(1) == "^" else "\\ossdsub{", tex)


@lru_cache(maxsize=2048)
def latex_to_text(tex: str) -> str:
    """Unicode text for `tex`, with sub/superscripts marked by private-use characters."""
    walker_db, converter = _converter()
    try:
        walker = LatexWalker(
            _scripts_as_macros(tex), latex_context=walker_db, tolerant_parsing=True
        )
        nodes, _, _ = walker.get_latex_nodes()
        return " ".join(converter.nodelist_to_text(nodes).split())
    except (LatexWalkerError, IndexError, ValueError) as e:
        # Half-streamed or odd LaTeX must never break an answer: show the source instead.
        log.debug("LaTeX not converted (%s): %r", e, tex)
        return tex


def latex_to_html(tex: str) -> str:
    """`tex` as escaped HTML with <sup>/<sub>."""
    text = html.escape(latex_to_text(tex))
    for marker, tag in _MARKERS.items():
        text = text.replace(marker, tag)
    return text
