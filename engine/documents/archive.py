"""Zip bombs: refuse a .docx whose parts would inflate too far, before anything inflates them.

Two checks, because the central directory (the zip's index) can lie. First the index: member
count, each part's size and compression ratio, and the total. Then each deflated part is inflated
here, in small bounded steps and without keeping the output, to prove that it ends exactly at the
size the index declares. python-docx then inflates only what was proved: zipfile reads a part as
one `decompress` call and could otherwise grow to gigabytes before it notices the size is wrong.
"""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

from engine.documents.document import human_size
from engine.documents.limits import DocumentLimitError, DocumentLimits
from engine.errors import UnsupportedDocumentError

_LOCAL_HEADER = struct.Struct("<4s2B4HL2L2H")  # zip APPNOTE 4.3.7
_LOCAL_MAGIC = b"PK\x03\x04"
_CHUNK = 64 * 1024  # compressed bytes fed per step; the output of one step is bounded too
_ENCRYPTED = 0x1


def check_archive(data: bytes, name: str, limits: DocumentLimits) -> None:
    """Raise DocumentLimitError (or UnsupportedDocumentError if damaged) unless every part of the
    zip in `data` inflates within `limits`; returns without keeping anything inflated."""
    try:
        with zipfile.ZipFile(io.BytesIO(data)) as archive:
            members = archive.infolist()
            _check_index(members, name, limits)
            for info in members:
                _check_member(data, info, name)
    except (zipfile.BadZipFile, zlib.error, struct.error, ValueError) as e:
        raise _damaged(name, str(e)) from e


def _check_index(members: list[zipfile.ZipInfo], name: str, limits: DocumentLimits) -> None:
    if len(members) > limits.max_archive_members:
        raise DocumentLimitError(
            f"{name} was not read because it holds {len(members):,} parts, more than the "
            f"{limits.max_archive_members:,} a Word file needs: save a fresh copy from Word and "
            "attach that.",
            limit="size",
        )
    total = 0
    for info in members:
        if info.flag_bits & _ENCRYPTED:
            raise UnsupportedDocumentError(
                f"{name} is password-protected. Save an unprotected copy in Word and try again."
            )
        if info.compress_type not in (zipfile.ZIP_STORED, zipfile.ZIP_DEFLATED):
            raise _damaged(name, f"{info.filename} uses compression method {info.compress_type}")
        total += info.file_size
        ratio = info.file_size / max(1, info.compress_size)
        if info.file_size > limits.max_unpacked_bytes or total > limits.max_unpacked_bytes:
            raise _would_expand(name, limits.max_unpacked_bytes)
        if info.file_size > limits.ratio_floor_bytes and ratio > limits.max_ratio:
            raise DocumentLimitError(
                f"{name} was not read because one of its parts would expand {ratio:,.0f} times "
                f"(to {human_size(info.file_size)}), which no real Word file does: save a fresh "
                "copy from Word and attach that.",
                limit="size",
            )


def _check_member(data: bytes, info: zipfile.ZipInfo, name: str) -> None:
    start = _data_offset(data, info)
    compressed = memoryview(data)[start : start + info.compress_size]
    if len(compressed) != info.compress_size:
        raise _damaged(name, f"{info.filename} is cut short")
    if info.compress_type == zipfile.ZIP_STORED:
        if info.compress_size != info.file_size:
            raise _lying(name)
        return
    inflater = zlib.decompressobj(-zlib.MAX_WBITS)  # raw deflate, as zip stores it
    produced = 0
    for offset in range(0, len(compressed), _CHUNK):
        pending = bytes(compressed[offset : offset + _CHUNK])
        while pending and not inflater.eof:
            # Never ask for more than could still be honest: a lie costs one byte, not gigabytes.
            out = inflater.decompress(pending, min(_CHUNK, info.file_size - produced + 1))
            produced += len(out)
            if produced > info.file_size:
                raise _lying(name)
            pending = inflater.unconsumed_tail
        if inflater.eof:
            break
    if not inflater.eof or produced != info.file_size:
        raise _lying(name)


def _data_offset(data: bytes, info: zipfile.ZipInfo) -> int:
    header = data[info.header_offset : info.header_offset + _LOCAL_HEADER.size]
    fields = _LOCAL_HEADER.unpack(header)
    if fields[0] != _LOCAL_MAGIC:
        raise zipfile.BadZipFile(f"{info.filename}: bad local header")
    name_length, extra_length = fields[-2], fields[-1]
    return info.header_offset + _LOCAL_HEADER.size + name_length + extra_length


def _would_expand(name: str, limit: int) -> DocumentLimitError:
    return DocumentLimitError(
        f"{name} was not read because it would expand to more than {human_size(limit)} when "
        "unpacked: if it is a real document, save a fresh copy from Word (without embedded "
        "videos) and attach that.",
        limit="size",
    )


def _lying(name: str) -> DocumentLimitError:
    return DocumentLimitError(
        f"{name} was not read because it looks damaged or forged: its parts unpack to other "
        "sizes than its index says. Save a fresh copy from Word and attach that.",
        limit="size",
    )


def _damaged(name: str, detail: str) -> UnsupportedDocumentError:
    return UnsupportedDocumentError(
        f"{name} could not be read because it looks damaged: it is not a valid Word file. "
        f"({detail})"
    )
