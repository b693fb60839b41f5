"""What the model reads of an MCP tool's result, and the function names tools are offered under.

The model reads text only: text content goes through as it is; images, audio, binary resources and
links become a one-line note saying what the tool returned, so the model can tell the user; a
structured result is shown as JSON when no text block stands for it (the spec asks servers to
send its JSON as text too, so there usually is one).
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
import re

import mcp_types as types

# OpenAI's limit for a function name; harmony renders names as TypeScript identifiers.
MAX_FUNCTION_NAME = 64
_NOT_IDENTIFIER = re.compile(r"[^A-Za-z0-9_]+")
SEPARATOR = "__"  # between the server's and the tool's part: `files__read_file`


def result_text(result: types.CallToolResult) -> str:
    """The tool message for one result (before truncation)."""
    parts = [_block_text(block) for block in result.content]
    structured = result.structured_content
    has_text = any(isinstance(block, types.TextContent) for block in result.content)
    if structured is not None and not has_text:
        parts.append("Structured result:\n" + json.dumps(structured, indent=2, ensure_ascii=False))
    text = "\n".join(parts)
    return text if text.strip() else "(the tool returned no content)"


def _block_text(block: types.ContentBlock) -> str:
    if isinstance(block, types.TextContent):
        return block.text
    if isinstance(block, types.ImageContent):
        return f"[an image ({block.mime_type}, {_size(block.data)}): not shown to the model]"
    if isinstance(block, types.AudioContent):
        return f"[audio ({block.mime_type}, {_size(block.data)}): not played to the model]"
    if isinstance(block, types.ResourceLink):
        about = f": {block.description}" if block.description else ""
        mime = f", {block.mime_type}" if block.mime_type else ""
        return f"[a link to the resource {block.name} <{block.uri}>{mime}{about}]"
    if isinstance(block, types.EmbeddedResource):
        resource = block.resource
        mime = f", {resource.mime_type}" if resource.mime_type else ""
        if isinstance(resource, types.TextResourceContents):
            return f"[resource <{resource.uri}>{mime}]\n{resource.text}"
        return (
            f"[resource <{resource.uri}>{mime}, {_size(resource.blob)} of binary data: not shown]"
        )
    return f"[content of type {getattr(block, 'type', '?')!r}: not shown to the model]"


def _size(data: str) -> str:
    """The decoded size of base64 `data`, for people."""
    try:
        n = len(base64.b64decode(data, validate=False))
    except (binascii.Error, ValueError):
        n = len(data)
    return f"{n:,} bytes" if n < 10_000 else f"{n / 1024:,.0f} KB"


def identifier(text: str) -> str:
    """`text` as a name part a function may carry: ASCII letters, digits and `_` only."""
    cleaned = _NOT_IDENTIFIER.sub("_", text).strip("_")
    cleaned = re.sub("_{2,}", "_", cleaned)  # keep `__` for the separator alone
    if not cleaned:
        cleaned = "x" + hashlib.sha1(text.encode()).hexdigest()[:6]
    return "_" + cleaned if cleaned[0].isdigit() else cleaned


def unique(name: str, taken: set[str], limit: int = MAX_FUNCTION_NAME) -> str:
    """`name` cut to `limit` (with a hash of what was cut) and suffixed `_2`, `_3`... until it is
    not in `taken`; adds the result to `taken`."""
    if len(name) > limit:
        digest = hashlib.sha1(name.encode()).hexdigest()[:6]
        name = name[: limit - 7] + "_" + digest
    candidate, n = name, 1
    while candidate in taken:
        n += 1
        suffix = f"_{n}"
        candidate = name[: limit - len(suffix)] + suffix
    taken.add(candidate)
    return candidate
