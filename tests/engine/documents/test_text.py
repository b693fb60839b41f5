"""Plain text, Markdown, code and CSV: encodings, line ends and tables."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from engine.documents import DocumentLimitError, DocumentLimits, UnsupportedDocumentError, extract
from engine.documents.document import markdown_table
from engine.testing.hostile_documents import binary_junk

# Short Western texts that charset-normalizer alone reads as Baltic or Central European.
LATIN1_SAMPLES = [
    "Le théâtre est très beau. Où est la bibliothèque ? Ça coûte cher, déjà.\n",
    "Jalapeño, señor, ¿qué tal? Mañana.\n",
    "Grüße aus Köln. Ça va très bien.\n",
]


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_utf8_text_keeps_its_words_and_loses_windows_line_ends(tmp_path: Path) -> None:
    doc = extract(_write(tmp_path / "notes.txt", "Grüße\r\nzweite Zeile — ✓\r\n".encode()))

    assert (doc.kind, doc.text, doc.warnings, doc.pages) == (
        "text",
        "Grüße\nzweite Zeile — ✓",
        (),
        None,
    )


@pytest.mark.parametrize("text", LATIN1_SAMPLES)
def test_latin1_text_is_decoded_with_a_warning(tmp_path: Path, text: str) -> None:
    doc = extract(_write(tmp_path / "old.txt", text.encode("latin-1")))

    assert doc.text == text.strip()
    assert doc.warnings == (
        "old.txt is not UTF-8; it was read as Windows-1252 (Western European) (a guess).",
    )


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Zażółć gęślą jaźń. Pchnąć w tę łódź jeża lub ośm skrzyń fig.\n", "cp1250"),
        ("Привет, как дела? Это тестовый текст на русском языке.\n", "cp1251"),
    ],
)
def test_other_legacy_encodings_are_not_forced_to_western(
    tmp_path: Path, text: str, encoding: str
) -> None:
    doc = extract(_write(tmp_path / "old.txt", text.encode(encoding)))

    assert doc.text == text.strip()


@pytest.mark.parametrize("encoding", ["utf-16", "utf-16-be", "utf-32", "utf-8-sig"])
def test_text_with_a_byte_order_mark_is_decoded(tmp_path: Path, encoding: str) -> None:
    data = "Hello wörld\nπ ≈ 3.14".encode(encoding)
    if encoding == "utf-16-be":
        data = b"\xfe\xff" + data

    doc = extract(_write(tmp_path / "wide.txt", data))

    assert (doc.text, doc.warnings) == ("Hello wörld\nπ ≈ 3.14", ())


def test_markdown_and_code_are_kept_verbatim(tmp_path: Path) -> None:
    markdown = "# Title\n\n* item with `code`\n"
    code = "def main() -> None:\n    print('<|end|>')\n"

    md = extract(_write(tmp_path / "README.md", markdown.encode()))
    py = extract(_write(tmp_path / "tool.py", code.encode()))

    assert (md.kind, md.text) == ("markdown", markdown.strip())
    assert (py.kind, py.text) == ("code", code.strip())


def test_a_binary_file_renamed_txt_is_refused(tmp_path: Path) -> None:
    path = _write(
        tmp_path / "photo.txt", b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256))
    )

    with pytest.raises(UnsupportedDocumentError, match=r"^photo\.txt is not a text file"):
        extract(path)


def test_a_semicolon_csv_becomes_a_markdown_table(tmp_path: Path) -> None:
    data = 'Name;Price;Note\nApfel;1,50;rot\nBirne;2,00;"gelb; reif"\n\nPflaume;0,90\n'

    doc = extract(_write(tmp_path / "prices.csv", data.encode()))

    assert doc.kind == "csv"
    assert doc.text == (
        "| Name | Price | Note |\n"
        "|---|---|---|\n"
        "| Apfel | 1,50 | rot |\n"
        "| Birne | 2,00 | gelb; reif |\n"
        "| Pflaume | 0,90 |  |"
    )


def test_a_long_csv_is_capped_with_a_visible_note(tmp_path: Path) -> None:
    rows = "\n".join(f"{i},{i * i}" for i in range(50))
    path = _write(tmp_path / "squares.csv", f"n,square\n{rows}\n".encode())

    doc = extract(path, max_csv_rows=10)

    assert sum(line.startswith("| ") for line in doc.text.splitlines()) == 1 + 10
    assert doc.text.endswith("\n\n(Showing the first 10 of 50 rows.)")
    assert doc.warnings == ("squares.csv: Showing the first 10 of 50 rows.",)


def test_a_tab_separated_file_is_split_on_tabs(tmp_path: Path) -> None:
    doc = extract(_write(tmp_path / "data.tsv", b"a\tb\n1\t2\n"))

    assert doc.text == "| a | b |\n|---|---|\n| 1 | 2 |"


def test_markdown_table_cells_cannot_break_the_table() -> None:
    table = markdown_table([["a|b", "multi\nline"], ["only one"]])

    assert table == "| a\\|b | multi line |\n|---|---|\n| only one |  |"


# English with a few accents: charset-normalizer alone reads these as Baltic (cp775/cp1257:
# "naïve" -> "na’ve", "café" -> "cafķ") or, for short words, as UTF-16 or Big5.
WESTERN_SAMPLES = [
    "It was a naïve plan, but the café owner liked it.\nWe met at the café again.\n",
    "Résumé of the naïve approach.\nRésumé of the naïve approach.\n",
    "The naïve Bayes classifier is simple. It works well on text.\n",
    "naïve café\n",
    "façade\n",
    "São Paulo, smörgåsbord, el niño y la niña\n",
    "Björk sang „Jóga“ in Reykjavík — “quoted” … 50 € and don’t\n",
]


@pytest.mark.parametrize("text", WESTERN_SAMPLES)
def test_western_legacy_text_is_read_as_windows_1252(tmp_path: Path, text: str) -> None:
    doc = extract(_write(tmp_path / "notes.txt", text.encode("cp1252")))

    assert doc.text == text.strip()
    assert doc.warnings == (
        "notes.txt is not UTF-8; it was read as Windows-1252 (Western European) (a guess).",
    )


@pytest.mark.parametrize(
    ("text", "encoding"),
    [
        ("Příliš žluťoučký kůň úpěl ďábelské ódy.\n", "cp1250"),
        ("Καλημέρα, τι κάνεις; Αυτό είναι ένα κείμενο.\n", "cp1253"),
        ("日本語のテキストです。これはテストです。\n", "shift_jis"),
        ("这是一个中文文本，用于测试编码检测。\n", "gb18030"),
    ],
)
def test_text_that_is_not_western_is_left_to_the_detector(
    tmp_path: Path, text: str, encoding: str
) -> None:
    doc = extract(_write(tmp_path / "old.txt", text.encode(encoding)))

    assert doc.text == text.strip()
    assert "Windows-1252" not in doc.warnings[0]


def test_one_giant_line_is_kept_whole(tmp_path: Path) -> None:
    line = "word " * 300_000  # 1.5 MB, no line break
    started = time.process_time()

    doc = extract(_write(tmp_path / "line.txt", line.encode()))

    assert doc.text == line.strip("\n")
    assert time.process_time() - started < 2.0


def test_text_over_the_character_limit_is_refused_with_the_limit(tmp_path: Path) -> None:
    path = _write(tmp_path / "book.txt", b"word " * 500_000)

    with pytest.raises(DocumentLimitError) as caught:
        extract(path, limits=DocumentLimits(max_chars=1_000_000))

    assert caught.value.limit == "size"
    assert str(caught.value).startswith(
        "book.txt has too much text to attach (more than 1,000,000 characters): attach only"
    )


def test_binary_junk_without_nul_bytes_is_refused(tmp_path: Path) -> None:
    path = binary_junk(tmp_path / "junk.txt", size=200_000, nul=False)

    with pytest.raises(UnsupportedDocumentError, match=r"^junk\.txt could not be read because"):
        extract(path)
