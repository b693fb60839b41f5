"""How attached documents enter the user message, and whether they fit in the context.

Documents come before the user's own words: the question then sits closest to the answer, and a
document's tokens form a stable prefix that a later KV-prefix cache can reuse.

Harmony's special tokens (`<|end|>`, `<|start|>`, ...) need no escaping here: the renderer
encodes user text with `encode_ordinary`, so a document that contains them only contains text.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass

from engine.documents.document import ExtractedDocument

# Any spelling a model might read as our own tag: `</document>`, `< / Document`, `<document x=`.
_TAG_LOOKALIKE = re.compile(r"<(?=\s*/?\s*document\b)", re.IGNORECASE)
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


def escape_document_text(text: str) -> str:
    """Make `text` unable to close (or fake) a <document> block; `&lt;` still reads as `<`."""
    return _TAG_LOOKALIKE.sub("&lt;", text)


def attachment_block(doc: ExtractedDocument) -> str:
    """`<document name=".." kind=".." pages="..">` + text + `</document>`, the text escaped."""
    attrs = {"name": doc.name, "kind": doc.kind}
    if doc.pages is not None:
        attrs["pages"] = str(doc.pages)
    rendered = " ".join(f'{k}="{_attribute(v)}"' for k, v in attrs.items())
    return f"<document {rendered}>\n{escape_document_text(doc.text)}\n</document>"


def compose_user_message(text: str, docs: Sequence[ExtractedDocument]) -> str:
    """The user message the model sees: each document's block, then what the user typed."""
    parts = [attachment_block(doc) for doc in docs]
    if text.strip():
        parts.append(text)
    return "\n\n".join(parts)


def _attribute(value: str) -> str:
    # A file name may hold quotes or even a newline; either would break the opening tag.
    return html.escape(_CONTROL.sub(" ", value), quote=True)


@dataclass(frozen=True)
class FitReport:
    """Whether a document fits next to the conversation, with a message that shows the numbers."""

    fits: bool
    doc_tokens: int
    prompt_tokens: int
    context_budget: int
    overflow: int  # tokens over the budget; 0 when it fits
    message: str


def check_fits(
    doc_tokens: int, prompt_tokens: int, context_budget: int, *, name: str = "The document"
) -> FitReport:
    """Compare a document's tokens (its whole block) plus the conversation with the budget.

    `context_budget` is what the caller allows for the prompt: the context minus room to answer.
    """
    if doc_tokens < 0 or prompt_tokens < 0:
        raise ValueError("token counts must be >= 0")
    if context_budget <= 0:
        raise ValueError("context_budget must be > 0")
    total = doc_tokens + prompt_tokens
    overflow = max(0, total - context_budget)
    context = f"the {context_budget:,}-token context"
    if prompt_tokens == 0:
        if overflow:
            message = f"{name} is about {doc_tokens:,} tokens, {overflow:,} more than {context}."
        else:
            message = f"{name} is about {doc_tokens:,} tokens, within {context}."
    else:
        so_far = f"with the conversation so far ({prompt_tokens:,})"
        if overflow:
            message = (
                f"{name} is about {doc_tokens:,} tokens; {so_far} it exceeds {context} "
                f"by {overflow:,} tokens."
            )
        else:
            message = (
                f"{name} is about {doc_tokens:,} tokens; {so_far} it uses {total:,} of {context}."
            )
    if overflow:
        message += (
            " Start a new chat to make room for it."
            if doc_tokens <= context_budget
            else " Attach a shorter document or only the part you need."
        )
    return FitReport(
        fits=overflow == 0,
        doc_tokens=doc_tokens,
        prompt_tokens=prompt_tokens,
        context_budget=context_budget,
        overflow=overflow,
        message=message,
    )
