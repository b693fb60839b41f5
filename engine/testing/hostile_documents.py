"""Hostile documents, made on the spot with real libraries, and a measurement of reading them.

Each generator writes one file built to hang or exhaust a naive reader: zip bombs, markup that is
quadratic for tree-editing parsers, PDFs whose pages repeat one huge content stream or that claim
100,000 pages, a text file of one giant line, binary junk named .txt. `measure` reads each through
the real ReaderPool and reports the outcome, the wall time and the reader's peak memory;
tests/hostile/test_documents.py and benchmarks/hostile_documents.py both use it.
"""

from __future__ import annotations

import io
import random
import struct
import time
import zipfile
import zlib
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from pypdf import PdfWriter
from pypdf.generic import (
    ArrayObject,
    DecodedStreamObject,
    DictionaryObject,
    NameObject,
    NumberObject,
)

from engine.documents import (
    DocumentLimitError,
    DocumentLimits,
    ExtractedDocument,
    ReaderPool,
    UnsupportedDocumentError,
)

MB = 1_000_000
_DOCUMENT_XML = "word/document.xml"
_W = b'xmlns:w="http://schemas.openxmlformats.org/wordprocessingml/2006/main"'
_XML_HEAD = (
    b'<?xml version="1.0" encoding="UTF-8" standalone="yes"?>\n<w:document ' + _W + b"><w:body>"
)
_XML_TAIL = b"</w:body></w:document>"
_LOCAL_SIZES = struct.Struct("<LLL")  # crc-32, compressed size, uncompressed size
_CENTRAL_MAGIC = b"PK\x01\x02"


# --- .docx ---------------------------------------------------------------------------------------


def docx_zip_bomb(path: Path, *, inflated_bytes: int = 1 << 30) -> Path:
    """A valid .docx of about 1 MB whose word/document.xml inflates to `inflated_bytes` (honest
    sizes in the zip's index): one paragraph of 4,000 letters, repeated."""
    path.write_bytes(_docx_with_body(inflated_bytes))
    return path


def docx_lying_index(path: Path, *, inflated_bytes: int = 1 << 30, claimed: int = 4096) -> Path:
    """The same bomb, but its index (local header and central directory) claims the document is
    `claimed` bytes, with the CRC of those first bytes, so zipfile's own checks pass."""
    data = bytearray(_docx_with_body(inflated_bytes))
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(_DOCUMENT_XML)
        with archive.open(info) as member:
            crc = zlib.crc32(member.read(claimed))  # a bounded read: it inflates `claimed` bytes
    for header, crc_at in ((info.header_offset, 14), (_central_entry(data), 16)):
        _LOCAL_SIZES.pack_into(data, header + crc_at, crc, info.compress_size, claimed)
    path.write_bytes(bytes(data))
    return path


def _docx_with_body(inflated_bytes: int) -> bytes:
    """python-docx's blank document, its body replaced by a deflate stream built from one
    compressed block repeated: after a full flush, deflate blocks do not refer back, so the
    file costs milliseconds to make however far it inflates."""
    import docx  # a runtime dependency, but only needed here

    blank = io.BytesIO()
    docx.Document().save(blank)
    paragraph = b"<w:p><w:r><w:t>" + b"A" * 4000 + b"</w:t></w:r></w:p>"
    chunk = paragraph * 256
    repeats = max(1, (inflated_bytes - len(_XML_HEAD) - len(_XML_TAIL)) // len(chunk))
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    head = deflate.compress(_XML_HEAD) + deflate.flush(zlib.Z_FULL_FLUSH)
    block = deflate.compress(chunk) + deflate.flush(zlib.Z_FULL_FLUSH)
    tail = deflate.compress(_XML_TAIL) + deflate.flush()
    crc = zlib.crc32(_XML_HEAD)
    for _ in range(repeats):
        crc = zlib.crc32(chunk, crc)
    crc = zlib.crc32(_XML_TAIL, crc)
    size = len(_XML_HEAD) + repeats * len(chunk) + len(_XML_TAIL)

    out = io.BytesIO()
    with zipfile.ZipFile(blank) as source, zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for item in source.infolist():
            if item.filename != _DOCUMENT_XML:
                zf.writestr(item.filename, source.read(item))
        # zipfile cannot take data that is already compressed: write a stored placeholder of the
        # right length, then turn its header into the deflated entry it stands for.
        placeholder = zipfile.ZipInfo(_DOCUMENT_XML, date_time=(2024, 1, 1, 0, 0, 0))
        zf.writestr(placeholder, head + block * repeats + tail, zipfile.ZIP_STORED)
    data = bytearray(out.getvalue())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo(_DOCUMENT_XML)
    for header, fields_at in ((info.header_offset, 8), (_central_entry(data), 10)):
        struct.pack_into("<H", data, header + fields_at, zipfile.ZIP_DEFLATED)
        _LOCAL_SIZES.pack_into(
            data, header + fields_at + 6, crc, info.compress_size, min(size, 0xFFFFFFFF)
        )
    return bytes(data)


def _central_entry(data: bytearray) -> int:
    """Where word/document.xml's entry starts in the central directory."""
    name = _DOCUMENT_XML.encode()
    at = data.rfind(_CENTRAL_MAGIC)
    while data[at + 46 : at + 46 + len(name)] != name:
        at = data.rfind(_CENTRAL_MAGIC, 0, at)
        if at < 0:
            raise ValueError("no central directory entry for word/document.xml")
    return at


# --- PDF -----------------------------------------------------------------------------------------


def pdf_shared_stream(path: Path, *, pages: int = 20, lines: int = 1_500) -> Path:
    """`pages` pages whose /Contents all point at one content stream object of `lines` text
    lines: a reader that parses it once per page does `pages` times the work. With 60,000 lines
    (3.3 MB decoded, a 160 KB file) pypdf needs 5-20 s a page: minutes for the file."""
    body = b"".join(
        b"(Line %d of the one stream every page shares.) Tj T*\n" % i for i in range(lines)
    )
    return _write_pdf(path, [b"14 TL 72 720 Td " + body], pages=pages)


def pdf_slow_pages(path: Path, *, pages: int = 50, moves: int = 500_000) -> Path:
    """`pages` pages, each with its own stream of `moves` text moves (3.5 MB decoded, under the
    per-page limit) and one short line: no cache helps, and pypdf parses every move."""
    streams = (b"72 720 Td (Page %d.) Tj " % n + b"0 0 Td\n" * moves for n in range(1, pages + 1))
    return _write_pdf(path, streams, pages=pages)


def pdf_with_pages(path: Path, operations: Sequence[bytes]) -> Path:
    """One page per entry, each drawing text with those operations (font /F1 is Helvetica)."""
    return _write_pdf(path, operations, pages=len(operations))


def pdf_many_pages(path: Path, *, pages: int = 100_000, honest_count: bool = True) -> Path:
    """A 2 MB PDF whose page tree lists one page `pages` times; /Count says so (or says 1)."""
    writer = PdfWriter()
    page = writer.add_blank_page(612, 792)
    page.replace_contents(_text_stream(b"72 720 Td (The same page again.) Tj").flate_encode())
    page[NameObject("/Resources")] = _resources()
    tree = writer.root_object["/Pages"].get_object()
    assert isinstance(tree, DictionaryObject)
    kids = tree["/Kids"]
    assert isinstance(kids, ArrayObject)
    kids.extend([kids[0]] * (pages - 1))
    tree[NameObject("/Count")] = NumberObject(pages if honest_count else 1)
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())
    return path


def _write_pdf(path: Path, operations: Iterable[bytes], *, pages: int) -> Path:
    """One content stream per page, made and compressed one at a time (a few MB in memory however
    many pages); pages past the streams share page 1's stream object, not a copy of it."""
    writer = PdfWriter()
    streams = iter(operations)
    for _ in range(pages):
        page = writer.add_blank_page(612, 792)
        page[NameObject("/Resources")] = _resources()
        ops = next(streams, None)
        if ops is not None:
            page.replace_contents(_text_stream(ops).flate_encode())
        else:
            page[NameObject("/Contents")] = writer.pages[0].raw_get("/Contents")
    out = io.BytesIO()
    writer.write(out)
    path.write_bytes(out.getvalue())
    return path


def _text_stream(operations: bytes) -> DecodedStreamObject:
    stream = DecodedStreamObject()
    stream.set_data(b"BT /F1 10 Tf " + operations + b" ET")
    return stream


def _resources() -> DictionaryObject:
    font = DictionaryObject(
        {
            NameObject("/Type"): NameObject("/Font"),
            NameObject("/Subtype"): NameObject("/Type1"),
            NameObject("/BaseFont"): NameObject("/Helvetica"),
            NameObject("/Encoding"): NameObject("/WinAnsiEncoding"),
        }
    )
    return DictionaryObject({NameObject("/Font"): DictionaryObject({NameObject("/F1"): font})})


# --- HTML, text, junk ----------------------------------------------------------------------------


def html_nested(path: Path, *, size: int = MB) -> Path:
    """`size` bytes of <div>s, each inside the previous one and none closed."""
    path.write_bytes(b"<div>x " * (size // 7))
    return path


def html_unclosed(path: Path, *, size: int = MB) -> Path:
    """`size` bytes of unclosed <b> (each opens inside the last)."""
    path.write_bytes(b"<b>x " * (size // 5))
    return path


def html_unterminated_tags(path: Path, *, size: int = MB) -> Path:
    """ "<a" repeated and never closed by ">": Python's html.parser (before 3.13.4) rescans to the
    end of the input for each one."""
    path.write_bytes(b"<p>Before.</p>" + b"<a" * (size // 2))
    return path


def text_giant_line(path: Path, *, chars: int = 8 * MB) -> Path:
    """One line of `chars` characters, no line break anywhere."""
    path.write_bytes(b"word " * (chars // 5))
    return path


def binary_junk(path: Path, *, size: int = 5 * MB, seed: int = 0, nul: bool = True) -> Path:
    """Random bytes; without NUL bytes (`nul=False`) it cannot be told from text by that test."""
    rng = random.Random(seed)
    data = rng.randbytes(size)
    path.write_bytes(data if nul else data.replace(b"\x00", b"\x01"))
    return path


# --- measuring -----------------------------------------------------------------------------------

Expect = str  # "text" (read correctly), "refused", or the DocumentLimitError kind: "size", "time"


@dataclass(frozen=True)
class Case:
    name: str
    filename: str
    make: Callable[[Path], Path]
    expect: Expect


CASES: tuple[Case, ...] = (
    Case("docx zip bomb (1.5 MB -> 1 GB)", "bomb.docx", docx_zip_bomb, "size"),
    Case("docx whose zip index lies", "forged.docx", docx_lying_index, "size"),
    Case("html: 1 MB of nested <div>", "nested.html", html_nested, "text"),
    Case("html: 1 MB of unclosed <b>", "unclosed.html", html_unclosed, "text"),
    Case('html: 1 MB of "<a" never closed', "unterminated.html", html_unterminated_tags, "text"),
    Case("pdf: 20 pages share one stream", "shared.pdf", pdf_shared_stream, "text"),
    Case(
        "pdf: 20 pages share a 3 MB stream",
        "shared-heavy.pdf",
        partial(pdf_shared_stream, lines=60_000),
        "size",
    ),
    Case("pdf: claims 100,000 pages", "pages.pdf", pdf_many_pages, "size"),
    Case("pdf: 50 pages of 3.5 MB each", "slow.pdf", pdf_slow_pages, "time"),
    Case("text: one 8 MB line", "line.txt", text_giant_line, "size"),
    Case("binary junk named .txt", "junk.txt", binary_junk, "refused"),
    Case("binary junk, no NUL bytes", "junk-nonul.txt", partial(binary_junk, nul=False), "refused"),
)


@dataclass(frozen=True)
class Measurement:
    case: str
    expected: Expect
    outcome: Expect  # what happened, in the same terms
    detail: str  # the text's size, or the first sentence of the message
    seconds: float
    peak_mib: float  # the reader process's peak resident memory

    @property
    def as_expected(self) -> bool:
        return self.outcome == self.expected


def measure(
    folder: Path,
    *,
    limits: DocumentLimits | None = None,
    cases: Sequence[Case] = CASES,
    report: Callable[[Measurement], None] | None = None,
) -> list[Measurement]:
    """Write each case into `folder` and read it through a ReaderPool, one at a time (so each
    time is its own); `report` sees each measurement as it is made."""
    pool = ReaderPool(limits, max_workers=1)
    results = []
    try:
        for case in cases:
            path = case.make(folder / case.filename)
            started = time.monotonic()
            reading = pool.read(path)
            outcome, detail = _outcome(reading.result, pool.limits.seconds)
            stats = reading.stats
            measurement = Measurement(
                case=case.name,
                expected=case.expect,
                outcome=outcome,
                detail=detail,
                seconds=stats.seconds if stats else time.monotonic() - started,
                peak_mib=stats.peak_rss_bytes / (1 << 20) if stats else float("nan"),
            )
            results.append(measurement)
            if report is not None:
                report(measurement)
    finally:
        pool.shutdown(timeout=5)
    return results


def _outcome(result: Callable[[float], ExtractedDocument], seconds: float) -> tuple[str, str]:
    try:
        doc = result(seconds + 30)  # the pool's own limit ends it well before
    except DocumentLimitError as e:
        return e.limit, _first_sentence(str(e))
    except UnsupportedDocumentError as e:
        return "refused", _first_sentence(str(e))
    pages = f", {doc.pages:,} pages" if doc.pages is not None else ""
    return "text", f"{len(doc.text):,} characters{pages}"


def _first_sentence(message: str) -> str:
    end = message.find(". ")
    return message if end < 0 else message[: end + 1]


def format_table(measurements: Sequence[Measurement]) -> str:
    """A Markdown table: case, outcome, seconds, peak MiB, and what was read or said."""
    lines = [
        "| case | outcome | seconds | peak MiB | detail |",
        "|---|---|---:|---:|---|",
    ]
    for m in measurements:
        outcome = m.outcome if m.as_expected else f"{m.outcome} (expected {m.expected})"
        lines.append(f"| {m.case} | {outcome} | {m.seconds:.2f} | {m.peak_mib:.0f} | {m.detail} |")
    return "\n".join(lines)
