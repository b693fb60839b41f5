"""A real library of real documents, and the real o200k tokenizer for both browsers.

The reference browser counts tokens with `tiktoken.get_encoding("o200k_base")`, which reads the
vocabulary from `$TIKTOKEN_CACHE_DIR/<sha1 of its URL>`; the verified file is put there, so
nothing is downloaded.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.library import Library, index_files
from engine.testing.real_vocab import RealVocabFiles
from engine.tokenizer import O200K_BASE_SHA256, HarmonyTokenizer, tiktoken_cache_path
from tests.engine.library.documents import filler, write_docx, write_pdf, write_text

_UNICODE = "naïve café — 東京タワー 😀 Ünïcödé ½ ﬁne 〖x〗"


@pytest.fixture(scope="session")
def o200k(
    real_vocab: RealVocabFiles, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[HarmonyTokenizer]:
    before = os.environ.get("TIKTOKEN_CACHE_DIR")
    os.environ["TIKTOKEN_CACHE_DIR"] = str(tmp_path_factory.mktemp("tiktoken-cache"))
    cached = tiktoken_cache_path()
    assert cached is not None
    shutil.copyfile(real_vocab.tiktoken_file, cached)
    yield HarmonyTokenizer.from_tiktoken_file(
        real_vocab.tiktoken_file, expected_sha256=O200K_BASE_SHA256
    )
    if before is None:
        os.environ.pop("TIKTOKEN_CACHE_DIR", None)
    else:
        os.environ["TIKTOKEN_CACHE_DIR"] = before


def write_corpus(folder: Path) -> list[Path]:
    """Pages longer than one view, a blank PDF page, multi-byte text, tabs and long words."""
    folder.mkdir(parents=True, exist_ok=True)
    pdf_pages = [
        filler(1, 520),
        "",
        filler(3, 300) + " The xylophone quartet played at dawn. " + filler(4, 200),
        "Café prices rose. " + filler(5, 80),
        "End of the atlas.",
    ]
    sections = [
        f"# Section {n}\n\n"
        + "\n".join(f"{filler(n * 10 + i, 40)} {_UNICODE}" for i in range(12))
        + ("\n\nxylophone notes here." if n == 2 else "")
        for n in range(1, 5)
    ]
    code = "\n".join(
        [
            "def lookup(table):",
            "\tfor key in table:  # a tab-indented body",
            "\t\tyield key",
            "URL = 'https://example.com/" + "a" * 150 + "'",
            *[f"# comment line {i}: {filler(i, 14)}" for i in range(60)],
        ]
    )
    return [
        write_pdf(folder / "atlas.pdf", pdf_pages, font_size=8),
        write_text(folder / "notes.md", "\n\n".join(sections)),
        write_docx(folder / "memo.docx", [filler(7, 60), "The xylophone budget."], heading="Memo"),
        write_text(folder / "lookup.py", code),
    ]


@pytest.fixture(scope="session")
def corpus(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The indexed library's database file; tests open their own Library on it."""
    root = tmp_path_factory.mktemp("browser-corpus")
    path = root / "library.sqlite3"
    with Library(path) as library:
        report = index_files(library, write_corpus(root / "docs"))
        assert not report.failed
    return path


@pytest.fixture
def library(corpus: Path) -> Iterator[Library]:
    with Library(corpus) as opened:
        yield opened
