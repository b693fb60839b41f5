"""The document library and the browser tool: indexing speed, search latency, retrieval recall.

    .venv/bin/python -m benchmarks.documents [--pages 10000] [--questions 200] [--quick]
        [--no-variants] [--json out.json]

The corpus is public text already on this machine, the Python standard library's source and
docstrings, turned into PDF (fpdf2), Word (python-docx) and Markdown files once and kept in
benchmarks/.cache/documents/: `big.pdf` (1,000 pages), more PDFs, then Word and Markdown files
until the library counts `--pages` pages (PDF pages, or sections: engine/library/paging.py).
Measured on a fresh library file each run:
- indexing: `big.pdf` alone (extraction timed apart), then the rest; pages/s; how long a cancel
  takes to return while pages are indexed and while a document is extracted;
- retrieval: questions made from the corpus, each the rarest five-word phrase of a prose sentence,
  kept if it occurs on exactly one page (checked over every page's words); recall@1, recall@5
  and MRR of that page in `Library.search(question, limit=5)`. "Hard" questions take any unique
  phrase instead, mostly common words;
- search latency p50/p99 of `Library.search(limit=10)` over the questions plus keyword queries
  of frequent words (long posting lists), and of the whole `browser.search` call (ranking,
  results page, token-counted view) with the real o200k vocabulary when it is available.
Variants re-index the same text with other passage windows (whole pages, 8, 12, 16/8 lines).
Targets: search p99 <= 50 ms on 10,000 pages, recall@5 >= 0.9, `big.pdf` indexed in <= 60 s.
"""

from __future__ import annotations

import argparse
import ast
import json
import math
import os
import random
import re
import sqlite3
import statistics
import sys
import sysconfig
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Sequence
from contextlib import closing
from dataclasses import asdict, dataclass
from functools import cache, partial
from pathlib import Path
from typing import Any

import docx
from fpdf import FPDF

from engine.documents import ExtractedDocument, extract
from engine.library import Library, index_files, split_sections
from engine.library.records import IndexProgress

CACHE = Path(__file__).resolve().parent / ".cache" / "documents"
CORPUS_VERSION = 1
PDF_LINES_PER_PAGE = 56
PDF_LINE_CHARS = 96
# Passage windows compared: (name, lines, stride); the first is the library's default.
VARIANTS = [("12 lines", 12, 12), ("page", 10**6, 10**6), ("8 lines", 8, 8), ("16/8", 16, 8)]
TEMPLATES = ["What does the documentation say about {}?", "Where is it explained that {}?"]
TEMPLATES += ["{}", "Find the passage about {}."]
_SENTENCE = re.compile(r"[^.!?]*[.!?]")
# Prose: a capitalised word and at least seven lower-case words (not code, not a heading).
_PROSE = re.compile(r"[A-Z][a-z]+(?: [a-z][a-z'-]*){7}")
_WORDS = re.compile(r"[a-z]+")


# Corpus


@dataclass(frozen=True)
class Shape:
    big_pdf_pages: int = 1000
    pdf_parts: int = 15  # more PDFs after big.pdf ...
    part_pages: int = 100  # ... of this many pages
    docx_files: int = 60  # then Word files, then Markdown until the page target


def stdlib_sources() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(p for p in root.rglob("*.py") if "site-packages" not in p.parts)


def _latin1(text: str) -> str:
    # fpdf2's core fonts cover Latin-1 only; the rest would raise.
    return text.encode("latin-1", "replace").decode("latin-1").replace("\t", "    ")


def _write_pdf(path: Path, lines: list[str], pages: int) -> int:
    """`pages` pages of `PDF_LINES_PER_PAGE` lines from `lines`; returns the lines used."""
    pdf = FPDF()
    pdf.set_auto_page_break(False)
    pdf.set_font("Helvetica", size=8)
    used = 0
    for _ in range(pages):
        chunk = [line[:PDF_LINE_CHARS] for line in lines[used : used + PDF_LINES_PER_PAGE]]
        used += len(chunk)
        pdf.add_page()
        pdf.multi_cell(0, 4.4, "\n".join(chunk) or " ")
    pdf.output(str(path))
    return used


def _markdown(module: str, source: str) -> str:
    try:
        intro = ast.get_docstring(ast.parse(source)) or ""
    except (SyntaxError, ValueError):  # the library's own test data has Python 2 files
        intro = ""
    return f"# {module}\n\n{intro}\n\n```python\n{source}\n```\n"


def _write_docx(path: Path, module: str, source: str) -> str:
    document = docx.Document()
    document.add_heading(module, level=1)
    blocks = [b.strip("\n") for b in re.split(r"\n\s*\n", source) if b.strip()]
    for block in blocks:
        document.add_paragraph(re.sub(r"[\x00-\x08\x0b\x0c\x0e-\x1f]", "", block))  # XML-safe
    document.save(str(path))
    return "\n\n".join(blocks)


def build_corpus(folder: Path, target_pages: int, shape: Shape = Shape()) -> list[Path]:
    """Write (or reuse) the corpus; returns its files, `big.pdf` first."""
    manifest = folder / "manifest.json"
    wanted = [CORPUS_VERSION, target_pages, asdict(shape), sys.version]
    if manifest.is_file():
        saved = json.loads(manifest.read_text())
        if saved["key"] == wanted and all((folder / f).is_file() for f in saved["files"]):
            return [folder / f for f in saved["files"]]
    print(f"building the corpus in {folder} (once)...", flush=True)
    folder.mkdir(parents=True, exist_ok=True)
    sources = stdlib_sources()
    root = Path(sysconfig.get_paths()["stdlib"])
    texts = [(str(p.relative_to(root)), p.read_text(errors="replace")) for p in sources]
    lines = [_latin1(line) for _, text in texts for line in text.splitlines()]
    files: list[Path] = []
    pages = 0
    start = time.perf_counter()
    used = 0
    for name, n in [("big", shape.big_pdf_pages)] + [
        (f"part{i:02}", shape.part_pages) for i in range(shape.pdf_parts)
    ]:
        used += _write_pdf(folder / f"{name}.pdf", lines[used:], n)
        files.append(folder / f"{name}.pdf")
        pages += n
    print(f"  PDFs: {pages} pages in {time.perf_counter() - start:.0f} s", flush=True)
    # The PDFs took the first modules' lines; Word and Markdown take whole modules after them.
    taken = 0
    consumed = 0
    while taken < len(texts) and consumed < used:
        consumed += len(texts[taken][1].splitlines())
        taken += 1
    for n, (module, text) in enumerate(texts[taken:]):
        if pages >= target_pages:
            break
        stem = re.sub(r"[^A-Za-z0-9]+", "_", module.removesuffix(".py"))
        if n < shape.docx_files:
            path = folder / f"{stem}.docx"
            body = _write_docx(path, module, text)
            pages += len(split_sections(f"# {module}\n\n{body}"))
        else:
            path = folder / f"{stem}.md"
            path.write_text(_markdown(module, text), encoding="utf-8")
            pages += len(split_sections(path.read_text(encoding="utf-8")))
        files.append(path)
    manifest.write_text(
        json.dumps({"key": wanted, "files": [f.name for f in files]}, indent=1), encoding="utf-8"
    )
    print(f"  corpus: {len(files)} files, ~{pages} pages", flush=True)
    return files


# Indexing


def library_extractor() -> Callable[[Path], ExtractedDocument]:
    """`extract` with limits for indexing, where the document never enters the context.

    The attach limits (2 million characters, 2,000 pages) would refuse `big.pdf`; see the report.
    """
    try:
        from engine.documents import DocumentLimits
    except ImportError:  # extraction without limits
        return extract
    limits = DocumentLimits(max_chars=500_000_000, max_pages=100_000)
    return partial(extract, limits=limits)


@dataclass
class IndexTiming:
    seconds: float
    extract_seconds: float
    pages: int
    pages_per_s: float


def timed_index(library: Library, files: Sequence[Path], **kwargs: Any) -> IndexTiming:
    extracting: list[float] = []
    marks: dict[str, float] = {}

    def progress(p: IndexProgress) -> None:
        now = time.perf_counter()
        if p.stage == "extracting":
            marks["start"] = now
        elif p.stage == "indexing" and "start" in marks:
            extracting.append(now - marks.pop("start"))

    start = time.perf_counter()
    report = index_files(library, files, progress=progress, **kwargs)
    seconds = time.perf_counter() - start
    if report.failed:
        raise SystemExit(f"could not index: {report.failed}")
    return IndexTiming(
        seconds, sum(extracting), report.pages_indexed, report.pages_indexed / seconds
    )


def cancel_latency(db: Path, pdf: Path, extractor: Any, stage: str) -> float:
    """Seconds from cancel.set() during `stage` of indexing `pdf` to index_files returning
    (extraction cannot be interrupted: see engine/library/indexer.py)."""
    db.unlink(missing_ok=True)
    cancel = threading.Event()
    at: list[float] = []

    def progress(p: IndexProgress) -> None:
        if p.stage == stage and not cancel.is_set():
            at.append(time.perf_counter())
            cancel.set()

    def work() -> None:  # a Library belongs to its thread, so the worker opens its own
        with Library(db) as library:
            index_files(library, [pdf], progress=progress, cancel=cancel, extractor=extractor)

    worker = threading.Thread(target=work)
    worker.start()
    worker.join()
    return time.perf_counter() - at[0]


# Questions


@dataclass(frozen=True)
class Question:
    text: str
    answer: str  # the sentence the phrase comes from
    path: str
    page: int


def load_pages(library: Library) -> list[tuple[str, int, str]]:
    pages = []
    for document in library.documents():
        for number in range(1, document.pages_done + 1):
            stored = library.page(document.id, number)
            if stored is not None:
                pages.append((str(document.path), number, stored.text))
    return pages


def make_questions(
    pages: list[tuple[str, int, str]], n: int, seed: int = 0, *, rarest: bool = True
) -> list[Question]:
    """Up to `n` questions, each a five-word phrase of a prose sentence on a random page, kept
    only if the phrase occurs on no other page. `rarest` picks the sentence's rarest phrase (the
    highest summed inverse document frequency of its words); otherwise any unique phrase, which
    is mostly common words ("of the arguments are all") and much harder."""
    words_of = [_WORDS.findall(text.lower()) for _, _, text in pages]
    normalized = [" " + " ".join(words) + " " for words in words_of]
    df: Counter[str] = Counter(w for words in words_of for w in set(words))
    idf = {w: math.log(len(pages) / c) for w, c in df.items()}
    rng = random.Random(seed)
    order = list(range(len(pages)))
    rng.shuffle(order)
    questions: list[Question] = []
    for i in order:
        if len(questions) == n:
            break
        path, number, text = pages[i]
        sentences = [
            m.group(0).strip()
            for m in _SENTENCE.finditer(" ".join(text.split()))
            if _PROSE.match(m.group(0).strip())
        ]
        if not sentences:
            continue
        sentence = rng.choice(sentences)
        words = _WORDS.findall(sentence.lower())
        windows = [words[s : s + 5] for s in range(len(words) - 4)]
        if rarest:
            windows = [max(windows, key=lambda w: sum(idf.get(x, 0.0) for x in w))]
        else:
            rng.shuffle(windows)
        phrase = next(
            (p for w in windows if sum(f" {(p := ' '.join(w))} " in t for t in normalized) == 1),
            None,
        )
        if phrase is not None:
            template = TEMPLATES[len(questions) % len(TEMPLATES)]
            questions.append(Question(template.format(phrase), sentence, path, number))
    return questions


def retrieval(library: Library, questions: list[Question], k: int = 5) -> dict[str, float]:
    ranks = []
    for q in questions:
        hits = library.search(q.text, limit=k)
        found = [(str(h.document.path), h.page) for h in hits]
        ranks.append(found.index((q.path, q.page)) + 1 if (q.path, q.page) in found else None)
    return {
        "recall_at_1": sum(r == 1 for r in ranks) / len(ranks),
        f"recall_at_{k}": sum(r is not None for r in ranks) / len(ranks),
        "mrr": sum(1 / r for r in ranks if r) / len(ranks),
    }


# Latency


def keyword_queries(pages: list[tuple[str, int, str]], n: int, seed: int = 1) -> list[str]:
    """Queries of 2-4 words drawn from the 300 most frequent words: the longest posting lists."""
    counts: Counter[str] = Counter()
    for _, _, text in pages[::7]:
        counts.update(w for w in _WORDS.findall(text.lower()) if len(w) > 2)
    common = [w for w, _ in counts.most_common(300)]
    rng = random.Random(seed)
    return [" ".join(rng.sample(common, rng.randint(2, 4))) for _ in range(n)]


def latencies(run: Callable[[str], object], queries: list[str]) -> dict[str, float]:
    for q in queries[:20]:  # warm the page cache
        run(q)
    times = []
    for q in queries:
        start = time.perf_counter()
        run(q)
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {
        "p50_ms": statistics.median(times),
        "p99_ms": times[min(len(times) - 1, math.ceil(0.99 * len(times)) - 1)],
        "max_ms": times[-1],
        "queries": len(times),
    }


def browser_search(library: Library, cache_dir: Path) -> Callable[[str], object] | None:
    """The whole browser.search call, with the real o200k tokenizer counting the view."""
    try:
        from engine.browser import BrowserSession, LibraryBackend
        from engine.testing.real_vocab import RealVocabularyError, build_real_vocab
        from engine.tokenizer import HarmonyTokenizer

        files = build_real_vocab(cache_dir / "o200k-real-vocab")
    except (ImportError, RealVocabularyError) as e:
        print(f"(browser.search latency skipped: {e})")
        return None
    tokenizer = HarmonyTokenizer.from_tiktoken_file(files.tiktoken_file)
    session = BrowserSession(LibraryBackend(library), tokenizer)
    session.warm_up()
    return lambda q: session.search(q)


# The run


def evaluate(
    library: Library, db: Path, questions: list[Question], hard: list[Question], kw: list[str]
) -> dict[str, Any]:
    """Recall and latency on one index; `db` is its file, measured once the WAL is folded in."""
    with closing(sqlite3.connect(db)) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    search = partial(library.search, limit=10)
    return {
        "passages": library.passage_count(),
        "db_mb": db.stat().st_size / 1e6,
        **retrieval(library, questions),
        "hard": retrieval(library, hard),
        "search": latencies(search, [q.text for q in questions] + kw),
        "search_keywords": latencies(search, kw),
    }


def run(args: argparse.Namespace) -> dict[str, Any]:
    files = build_corpus(args.cache / "corpus", args.pages, args.shape)
    # Cached, so variants re-index the same text without reading the files again.
    extractor = cache(library_extractor())
    out: dict[str, Any] = {"files": len(files)}
    with tempfile.TemporaryDirectory() as tmp:
        db = Path(tmp) / "library.sqlite3"
        with Library(db) as library:
            big = timed_index(library, files[:1], extractor=extractor)
            rest = timed_index(library, files[1:], extractor=extractor)
            out["big_pdf"], out["corpus_index"] = asdict(big), asdict(rest)
            pages = load_pages(library)
            out["pages"], out["chars"] = len(pages), sum(len(t) for _, _, t in pages)
            questions = make_questions(pages, args.questions)
            hard = make_questions(pages, args.questions, seed=1, rarest=False)
            keywords = keyword_queries(pages, args.keywords)
            out["questions"], out["examples"] = len(questions), [asdict(q) for q in questions[:3]]
            print(f"{len(pages)} pages indexed; {len(questions)} questions", flush=True)
            main = evaluate(library, db, questions, hard, keywords)
            out["variants"] = {VARIANTS[0][0]: {"index_s": big.seconds + rest.seconds, **main}}
            session_search = browser_search(library, args.cache)
            if session_search is not None:
                queries = [q.text for q in questions] + keywords
                out["browser_search"] = latencies(session_search, queries)
        out["cancel"] = {
            stage: cancel_latency(
                Path(tmp) / "cancel.sqlite3", files[0], library_extractor(), stage
            )
            for stage in ("indexing", "extracting")
        }
        for name, lines, stride in VARIANTS[1:] if args.variants else []:
            path = Path(tmp) / f"variant-{lines}-{stride}.sqlite3"
            with Library(path) as library:
                timing = timed_index(
                    library, files, extractor=extractor, passage_lines=lines, passage_stride=stride
                )
                measured = evaluate(library, path, questions, hard, keywords)
                out["variants"][name] = {"index_s": timing.seconds, **measured}
            print(f"  variant {name} done", flush=True)
    return out


def report(out: dict[str, Any]) -> tuple[str, bool]:
    big, rest = out["big_pdf"], out["corpus_index"]
    rows = [
        f"load average: {os.getloadavg()[0]:.2f} on {os.cpu_count()} CPUs",
        f"corpus: {out['files']} files, {out['pages']} pages, {out['chars'] / 1e6:.1f}M chars",
        f"big.pdf ({big['pages']} pages): {big['seconds']:.1f} s "
        f"(extraction {big['extract_seconds']:.1f} s), {big['pages_per_s']:.0f} pages/s",
        f"rest of the corpus ({rest['pages']} pages): {rest['seconds']:.1f} s "
        f"(extraction {rest['extract_seconds']:.1f} s), {rest['pages_per_s']:.0f} pages/s",
        "cancel returns after: "
        + ", ".join(f"while {k} {v:.2f} s" for k, v in out["cancel"].items()),
        "",
        f"{'passages':<10} {'rows':>7} {'index s':>8} {'db MB':>6} {'R@1':>5} {'R@5':>5} {'MRR':>5}"
        f" {'p50 ms':>7} {'p99 ms':>7} {'kw p99':>7} {'hardR@5':>7}",
    ]
    for name, v in out["variants"].items():
        rows.append(
            f"{name:<10} {v['passages']:>7} {v['index_s']:>8.1f} {v['db_mb']:>6.0f}"
            f" {v['recall_at_1']:>5.2f} {v['recall_at_5']:>5.2f} {v['mrr']:>5.2f}"
            f" {v['search']['p50_ms']:>7.2f} {v['search']['p99_ms']:>7.2f}"
            f" {v['search_keywords']['p99_ms']:>7.2f} {v['hard']['recall_at_5']:>7.2f}"
        )
    if "browser_search" in out:
        b = out["browser_search"]
        rows.append(
            f"\nbrowser.search (rank + results page + token-counted view): "
            f"p50 {b['p50_ms']:.2f} ms, p99 {b['p99_ms']:.2f} ms"
        )
    main = next(iter(out["variants"].values()))
    checks = {
        f"search p99 <= 50 ms on {out['pages']} pages": main["search"]["p99_ms"] <= 50,
        "recall@5 >= 0.9": main["recall_at_5"] >= 0.9,
        "1,000-page PDF indexed in <= 60 s": big["seconds"] <= 60,
        "at least 10,000 pages": out["pages"] >= 10_000,
        "at least 100 questions": out["questions"] >= 100,
    }
    rows += [""] + [f"{'PASS' if ok else 'FAIL'}  {name}" for name, ok in checks.items()]
    ok = all(checks.values())
    rows.append(f"verdict: {'all targets met' if ok else 'targets missed'}")
    return "\n".join(rows), ok


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--pages", type=int, default=10_000)
    parser.add_argument("--questions", type=int, default=200)
    parser.add_argument("--keywords", type=int, default=200)
    parser.add_argument("--no-variants", dest="variants", action="store_false")
    parser.add_argument(
        "--quick", action="store_true", help="2,000 pages, 100 questions, no variants"
    )
    parser.add_argument("--cache", type=Path, default=CACHE)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    args.shape = Shape()
    if args.quick:
        args.pages, args.questions, args.variants = 2_000, 100, False
    start = time.perf_counter()
    out = run(args)
    out["total_s"] = time.perf_counter() - start
    text, ok = report(out)
    print(text)
    print(f"(benchmark ran {out['total_s']:.0f} s)")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1), encoding="utf-8")
    return 0 if ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
