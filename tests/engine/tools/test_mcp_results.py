"""What the model reads of MCP results, and the function names tools get."""

from __future__ import annotations

import base64
import re

import mcp_types as types

from engine.tools.mcp.results import identifier, result_text, unique

PNG = base64.b64encode(b"\x89PNG" + bytes(2044)).decode()


def test_text_passes_through_and_other_content_becomes_a_note() -> None:
    result = types.CallToolResult(
        content=[
            types.TextContent(text="Here is the chart."),
            types.ImageContent(data=PNG, mime_type="image/png"),
            types.AudioContent(data=PNG, mime_type="audio/wav"),
            types.ResourceLink(name="report", uri="file:///r.pdf", mime_type="application/pdf"),
            types.EmbeddedResource(
                resource=types.TextResourceContents(uri="file:///a.txt", text="alpha")
            ),
            types.EmbeddedResource(
                resource=types.BlobResourceContents(uri="file:///b.bin", blob=PNG)
            ),
        ]
    )
    lines = result_text(result).splitlines()
    assert lines == [
        "Here is the chart.",
        "[an image (image/png, 2,048 bytes): not shown to the model]",
        "[audio (audio/wav, 2,048 bytes): not played to the model]",
        "[a link to the resource report <file:///r.pdf>, application/pdf]",
        "[resource <file:///a.txt>]",
        "alpha",
        "[resource <file:///b.bin>, 2,048 bytes of binary data: not shown]",
    ]


def test_structured_content_is_shown_when_no_text_stands_for_it() -> None:
    only_structured = types.CallToolResult(content=[], structured_content={"temp": 21.5})
    assert result_text(only_structured) == 'Structured result:\n{\n  "temp": 21.5\n}'
    with_text = types.CallToolResult(
        content=[types.TextContent(text='{"temp": 21.5}')], structured_content={"temp": 21.5}
    )
    assert result_text(with_text) == '{"temp": 21.5}'


def test_empty_result_says_so() -> None:
    assert result_text(types.CallToolResult(content=[])) == "(the tool returned no content)"


def test_names_are_identifiers() -> None:
    assert identifier("read-file") == "read_file"
    assert identifier("files.v2/list") == "files_v2_list"
    assert identifier("my__tool") == "my_tool"  # `__` is kept for the server separator
    assert identifier("1password") == "_1password"
    assert re.fullmatch(r"x[0-9a-f]{6}", identifier("日本語"))


def test_unique_cuts_long_names_and_numbers_collisions() -> None:
    taken: set[str] = set()
    assert unique("demo__add", taken) == "demo__add"
    assert unique("demo__add", taken) == "demo__add_2"
    assert unique("demo__add", taken) == "demo__add_3"
    long_a, long_b = unique("s__" + "a" * 100, taken), unique("s__" + "a" * 99 + "b", taken)
    assert len(long_a) == len(long_b) == 64
    assert long_a != long_b
