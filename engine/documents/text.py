"""Plain text, Markdown, source code and CSV: decoding bytes whose encoding nobody declared."""

from __future__ import annotations

import codecs
import csv
import io

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
_CHAOS_SLACK = 0.1
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
    """Text from bytes: BOM, then UTF-8, then charset-normalizer's best guess (with a warning)."""
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
    best = _best_guess(data)
    if best is None:
        raise UnsupportedDocumentError(
            f"{name} could not be read because its text encoding is not recognised. "
            "Save it as UTF-8 and try again."
        )
    encoding = _ENCODING_NAMES.get(best.encoding, best.encoding)
    warning = f"{name} is not UTF-8; it was read as {encoding} (a guess)."
    return normalize_newlines(str(best)), (warning,)


def _best_guess(data: bytes) -> CharsetMatch | None:
    matches = from_bytes(data)
    best = matches.best()
    if best is None:
        return None
    # On short texts, code pages that differ in a few letters (è vs č) score almost alike and the
    # winner is noise; Western (Windows-1252, a superset of Latin-1) is the likeliest legacy text.
    for match in matches:
        close = match.chaos <= best.chaos + _CHAOS_SLACK and match.coherence >= best.coherence
        if close and _WESTERN in match.could_be_from_charset:
            return match
    return best


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
