"""The one-pass HTML scanner: tags, text, raw text, and constructs the input never closes."""

from __future__ import annotations

import time

import pytest

from engine.documents.markup import scan


def events(html: str) -> list[tuple[str, str]]:
    return list(scan(html))


def test_tags_and_text_in_order_with_lower_case_names() -> None:
    assert events('<P CLASS="x">Hi <B>you</B></P>') == [
        ("start", "p"),
        ("text", "Hi "),
        ("start", "b"),
        ("text", "you"),
        ("end", "b"),
        ("end", "p"),
    ]


def test_a_quoted_attribute_may_hold_a_greater_than_sign() -> None:
    assert events("<a title=\"x>y\" href='a>b' data=c>link</a>") == [
        ("start", "a"),
        ("text", "link"),
        ("end", "a"),
    ]


def test_self_closing_tags_open_and_close_but_a_slash_in_a_value_does_not() -> None:
    assert events("<div/><a href=/x/>y</a>") == [
        ("start", "div"),
        ("end", "div"),
        ("start", "a"),
        ("text", "y"),
        ("end", "a"),
    ]


def test_character_references_are_decoded_in_text_only() -> None:
    assert events("a &amp; b &lt;c&gt; &#x41;&nosuch;") == [("text", "a & b <c> A&nosuch;")]


def test_comments_doctypes_and_processing_instructions_are_not_text() -> None:
    html = "<!DOCTYPE html><!-- <p>no</p> --><?xml x?><![CDATA[no]]><!---->yes"
    assert events(html) == [("text", "yes")]


def test_script_content_is_raw_up_to_its_own_end_tag() -> None:
    assert events('<script>if (a<b) document.write("</div>");</script>after') == [
        ("start", "script"),
        ("text", 'if (a<b) document.write("</div>");'),
        ("end", "script"),
        ("text", "after"),
    ]


def test_the_title_is_raw_text_with_references() -> None:
    assert events("<title>A <b> &amp; B</title>") == [
        ("start", "title"),
        ("text", "A <b> & B"),
        ("end", "title"),
    ]


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("text<", [("text", "text"), ("text", "<")]),
        ("text</", [("text", "text"), ("text", "</")]),
        ("a < b", [("text", "a "), ("text", "<"), ("text", " b")]),
        ("text<p class='never", [("text", "text")]),  # cut off inside a tag: dropped
        ("x<!-- never closed <p>y", [("text", "x")]),
        ("<script>never closed", [("start", "script"), ("text", "never closed")]),
    ],
)
def test_constructs_the_input_never_closes_end_it(
    html: str, expected: list[tuple[str, str]]
) -> None:
    assert events(html) == expected


@pytest.mark.parametrize(
    "html",
    [
        "<a" * 500_000,  # html.parser before Python 3.13.4: minutes
        "<!--x>" * 170_000,
        "</" * 500_000,
        "<?" * 500_000,
        "<a x='" * 170_000,
    ],
    ids=["unclosed-tags", "unclosed-comments", "end-tag-starts", "pi-starts", "open-quotes"],
)
def test_a_megabyte_of_unclosed_constructs_takes_well_under_a_second(html: str) -> None:
    started = time.process_time()
    list(scan(html))
    assert time.process_time() - started < 1.0
