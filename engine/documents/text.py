"""Plain text, Markdown, source code and CSV: decoding bytes whose encoding nobody declared."""

from __future__ import annotations

import codecs
import csv
import io
import re

from charset_normalizer import CharsetMatch, from_bytes

from engine.documents.document import Body, markdown_table, normalize_newlines
from engine.errors import UnsupportedDocumentError

# UTF-32 first: its little-endian BOM begins with the UTF-16 one.
_BOMS: tuple[tuple[bytes, str], ...] = (
    (codecs.BOM_UTF32_LE, "utf-32-le"),
    (codecs.BOM_UTF32_BE, "utf-32-be"),
    (codecs.BOM_UTF8, "utf-8"),
    (codecs.BOM_UTF16_LE, "utf-16-le"),
    (codecs.BOM_UTF16_BE, "utf-16-be"),
)
_WESTERN = "cp1252"
# Read as Windows-1252: four accented letters in a row, or a symbol between two letters, occur in
# no Western European language (apostrophes and the Catalan middle dot aside).
_WESTERN_RUN = re.compile(r"[^\W\d_a-zA-Z]{4}")
_SYMBOL_IN_WORD = re.compile(r"(?<=[^\W\d_])[^\w\s\x00-\x7f\u2018\u2019\u00b7\u00ad](?=[^\W\d_])")
_ENCODING_NAMES = {_WESTERN: "Windows-1252 (Western European)", "mac_roman": "Mac OS Roman"}
_CSV_SNIFF_CHARS = 64_000
_CSV_DELIMITERS = ",;\t|"


def bom_encoding(data: bytes) -> tuple[str, int] | None:
    """The encoding a byte-order mark announces, and the mark's length."""
    for bom, encoding in _BOMS:
        if data.startswith(bom):
            return encoding, len(bom)
    return None


def reject_binary(data: bytes, name: str) -> None:
    # NUL never occurs in 8-bit or UTF-8 text (git uses the same test); UTF-16/32 need a BOM here.
    if bom_encoding(data) is None and b"\x00" in data:
        raise UnsupportedDocumentError(
            f"{name} is not a text file: it contains binary data. If it is a document, "
            "export it as .txt, .pdf or .docx."
        )


def decode_text(data: bytes, name: str) -> tuple[str, tuple[str, ...]]:
    """Text from bytes: a BOM, then UTF-8, then Windows-1252 if the text reads as Western European,
    then charset-normalizer's best guess. Any guess comes with a warning."""
    bom = bom_encoding(data)
    if bom is not None:
        encoding, skip = bom
        try:
            return normalize_newlines(data[skip:].decode(encoding)), ()
        except UnicodeDecodeError:
            raise UnsupportedDocumentError(
                f"{name} could not be read because its text is damaged. "
                f"It starts with a {encoding.upper()} marker but is not valid {encoding.upper()}."
            ) from None
    reject_binary(data, name)
    try:
        return normalize_newlines(data.decode("utf-8")), ()
    except UnicodeDecodeError:
        pass
    western = western_text(data)
    if western is not None:
        encoding = _ENCODING_NAMES[_WESTERN]
    else:
        best = _best_guess(data)
        if best is None:
            raise UnsupportedDocumentError(
                f"{name} could not be read because its text encoding is not recognised. "
                "Save it as UTF-8 and try again."
            )
        western, encoding = str(best), _ENCODING_NAMES.get(best.encoding, best.encoding)
    warning = f"{name} is not UTF-8; it was read as {encoding} (a guess)."
    return normalize_newlines(western), (warning,)


def western_text(data: bytes) -> str | None:
    """`data` as Windows-1252 if it reads as Western European text, else None.

    Statistical detectors misread short Western texts, where a few accented letters are all the
    evidence, as Baltic or Central European ("naïve" -> "naļve"). Windows-1252 (a superset of
    Latin-1) is also by far the most common legacy encoding. Other legacy encodings fail one of
    these tests when read as Windows-1252: Cyrillic, Greek, Hebrew and Arabic words become long
    runs of accented letters; Polish or Czech letters become symbols inside words ("Za¿ó³æ").
    """
    try:
        text = data.decode(_WESTERN)
    except UnicodeDecodeError:
        return None  # five byte values are undefined in Windows-1252
    if _WESTERN_RUN.search(text) or _SYMBOL_IN_WORD.search(text):
        return None
    return text


def _best_guess(data: bytes) -> CharsetMatch | None:
    # Without a BOM (checked first) UTF-16/32 is only ever a false match on 8-bit text.
    for match in from_bytes(data):
        if not match.encoding.startswith(("utf_16", "utf_32")):
            return match
    return None


def read_plain(data: bytes, name: str) -> Body:
    """Text, Markdown and code keep their text exactly, apart from line ends."""
    text, warnings = decode_text(data, name)
    return Body(text=text.strip("\n"), warnings=warnings)


def read_csv(data: bytes, name: str, *, max_rows: int) -> Body:
    """A CSV/TSV file as a Markdown table: the model reads columns far better than raw CSV."""
    text, warnings = decode_text(data, name)
    rows = [row for row in csv.reader(io.StringIO(text), _dialect(text, name)) if any(row)]
    if not rows:
        return Body(text="", warnings=warnings)
    header, records = rows[0], rows[1:]
    shown = records[:max_rows]
    table = markdown_table([header, *shown])
    if len(shown) < len(records):
        note = f"Showing the first {len(shown):,} of {len(records):,} rows."
        table += f"\n\n({note})"
        warnings = (*warnings, f"{name}: {note}")
    return Body(text=table, warnings=warnings)


def _dialect(text: str, name: str) -> type[csv.Dialect] | csv.Dialect:
    try:
        return csv.Sniffer().sniff(text[:_CSV_SNIFF_CHARS], delimiters=_CSV_DELIMITERS)
    except csv.Error:
        # One-column files and ragged samples defeat the sniffer; then the extension decides.
        return csv.excel_tab if name.lower().endswith(".tsv") else csv.excel
