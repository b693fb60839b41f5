"""benchmarks/documents.py on a tiny corpus: it builds, indexes, asks and reports. No timing is
asserted; the numbers themselves come from running the benchmark."""

from __future__ import annotations

import argparse
import shutil
from pathlib import Path

from benchmarks import documents as bench
from engine.testing.real_vocab import RealVocabFiles


def test_the_benchmark_runs_end_to_end(tmp_path: Path, real_vocab: RealVocabFiles) -> None:
    shutil.copytree(real_vocab.folder, tmp_path / "o200k-real-vocab")  # verified, not rebuilt
    shape = bench.Shape(big_pdf_pages=12, pdf_parts=2, part_pages=4, docx_files=2)
    args = argparse.Namespace(
        cache=tmp_path, pages=80, shape=shape, questions=20, keywords=10, variants=True
    )
    out = bench.run(args)

    assert out["big_pdf"]["pages"] == 12 and out["pages"] >= 80
    files = sorted(p.suffix for p in (tmp_path / "corpus").iterdir() if p.suffix != ".json")
    assert {".pdf", ".docx", ".md"} <= set(files)
    assert set(out["variants"]) == {name for name, _, _ in bench.VARIANTS}
    main = out["variants"]["12 lines"]
    assert out["questions"] >= 10 and main["recall_at_5"] >= 0.8
    assert main["search"]["queries"] == out["questions"] + 10
    assert set(out["cancel"]) == {"indexing", "extracting"}
    assert out["browser_search"]["p99_ms"] > 0
    text, _ok = bench.report(out)
    assert "big.pdf (12 pages)" in text and text.splitlines()[-1].startswith("verdict: ")
    # A second run reuses the corpus as written.
    before = {p: p.stat().st_mtime_ns for p in (tmp_path / "corpus").iterdir()}
    assert bench.build_corpus(tmp_path / "corpus", 80, shape)[0].name == "big.pdf"
    assert {p: p.stat().st_mtime_ns for p in (tmp_path / "corpus").iterdir()} == before
