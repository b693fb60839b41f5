"""Zip bombs in .docx files are refused before anything inflates them, and a lying index is caught
while the check inflates in small steps."""

from __future__ import annotations

import io
import resource
import time
import zipfile
from pathlib import Path

import pytest

from engine.documents import DocumentLimitError, DocumentLimits, UnsupportedDocumentError, extract
from engine.documents.archive import check_archive
from engine.testing.hostile_documents import docx_lying_index, docx_zip_bomb
from tests.engine.documents.samples import write_docx

MiB = 1 << 20


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # Linux: KiB


def test_a_real_docx_passes_the_check(tmp_path: Path) -> None:
    data = write_docx(tmp_path / "report.docx").read_bytes()

    check_archive(data, "report.docx", DocumentLimits())  # no exception


def test_a_bomb_is_refused_from_its_index_without_inflating(tmp_path: Path) -> None:
    path = docx_zip_bomb(tmp_path / "bomb.docx")  # 1.5 MB that inflates to 1 GB
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("word/document.xml").file_size > 1_000_000_000
    before, started = _peak_rss(), time.process_time()

    with pytest.raises(DocumentLimitError) as caught:
        extract(path)

    assert caught.value.limit == "size"
    assert str(caught.value).startswith(
        "bomb.docx was not read because it would expand to more than 250 MB when unpacked"
    )
    assert time.process_time() - started < 1.0
    assert _peak_rss() - before < 64 * MiB


def test_a_part_that_inflates_too_far_for_its_size_is_refused(tmp_path: Path) -> None:
    # 40 MB from 55 KB: under the total, but no Word file compresses 700 times.
    path = docx_zip_bomb(tmp_path / "dense.docx", inflated_bytes=40_000_000)

    with pytest.raises(DocumentLimitError, match=r"^dense\.docx .* would expand 7\d\d times"):
        extract(path)


def test_a_lying_index_is_caught_after_one_small_step(tmp_path: Path) -> None:
    path = docx_lying_index(tmp_path / "forged.docx")  # claims 4 KB, inflates to 1 GB
    with zipfile.ZipFile(path) as archive:
        assert archive.getinfo("word/document.xml").file_size == 4096
    before, started = _peak_rss(), time.process_time()

    with pytest.raises(DocumentLimitError, match=r"^forged\.docx .* damaged or forged"):
        extract(path)

    assert time.process_time() - started < 1.0
    assert _peak_rss() - before < 64 * MiB


def test_the_total_of_all_parts_counts(tmp_path: Path) -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
        for n in range(3):
            archive.writestr(f"word/media/image{n}.bin", bytes(400_000))

    with pytest.raises(DocumentLimitError, match=r"would expand to more than 1 MB"):
        check_archive(buffer.getvalue(), "x.docx", DocumentLimits(max_unpacked_bytes=1_000_000))


def test_too_many_parts_are_refused() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for n in range(30):
            archive.writestr(f"part{n}.xml", "<x/>")

    with pytest.raises(DocumentLimitError, match=r"^many\.docx .* holds 30 parts, more than"):
        check_archive(buffer.getvalue(), "many.docx", DocumentLimits(max_archive_members=20))


def test_a_part_cut_short_is_damage(tmp_path: Path) -> None:
    data = bytearray(write_docx(tmp_path / "report.docx").read_bytes())
    with zipfile.ZipFile(io.BytesIO(bytes(data))) as archive:
        info = archive.getinfo("word/document.xml")
    start = info.header_offset + 30 + len(info.filename) + len(info.extra)
    data[start + 10 : start + 40] = bytes(30)  # corrupt the deflate stream in place

    with pytest.raises(UnsupportedDocumentError, match=r"^report\.docx .*(damaged|forged)"):
        check_archive(bytes(data), "report.docx", DocumentLimits())


def test_an_unknown_compression_method_is_damage() -> None:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_LZMA) as archive:
        archive.writestr("word/document.xml", "<w:document/>")

    with pytest.raises(UnsupportedDocumentError, match=r"compression method 14"):
        check_archive(buffer.getvalue(), "odd.docx", DocumentLimits())
