"""`OSS Desk --self-test`: proves that a build works end to end in seconds, without a real model.

It runs the same code inside the bundle and from the source tree, and checks in order:

- window: Qt starts (offscreen unless QT_QPA_PLATFORM or --platform says otherwise) and shows
  the real main window, built by app.launch with a fresh temporary --data-dir and no model; the
  time from process start to that window is the start-up time we publish;
- files: the Metal kernel sources and resources resolve where the app looks for them (inside
  the bundle when frozen, never in a source tree that happens to sit next to it);
- documents: one file of each type the app registers (txt, md, csv, html, docx, pdf) extracts;
- download: a tiny synthetic gpt-oss with the real vocabulary size downloads from a loopback Hub;
- generate: the engine loads it and generates a few tokens;
- chat: a harmony chat turn with a synthetic tokenizer ends with TurnFinished.

One line per check, then a summary; returns 0 only when every check passed. Imports happen
inside the checks, so the window check times what the app itself loads before its window.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from PySide6.QtWidgets import QApplication, QMainWindow

# Written next to the bundled files by packaging/oss_desk.spec (packaging/bundle_contents.py).
MANIFEST_NAME = "bundle_manifest.json"
N_VOCAB = 201088  # gpt-oss's vocabulary: the harmony special tokens sit at 199998..201087
MAX_TOKENS = 4
_SOURCE_ROOT = Path(__file__).resolve().parent.parent


class CheckFailed(Exception):
    """A check found something wrong; the message is the report line."""


@dataclass
class Run:
    workdir: Path
    qt_platform: str
    started: float = field(default_factory=time.perf_counter)
    startup_s: float | None = None
    model_dir: Path | None = None
    model: object | None = None


@dataclass(frozen=True)
class Outcome:
    name: str
    ok: bool
    detail: str
    seconds: float


def is_frozen() -> bool:
    return bool(getattr(sys, "frozen", False)) and hasattr(sys, "_MEIPASS")


def bundle_root() -> Path:
    """sys._MEIPASS in the bundle (Contents/Frameworks in the .app), else the source tree."""
    return Path(getattr(sys, "_MEIPASS", _SOURCE_ROOT))


def resource_path(name: str) -> Path:
    """Where the app finds resources/`name`: app.resources.path once it exists."""
    try:
        from app.resources import path
    except ModuleNotFoundError as e:
        if e.name != "app.resources":
            raise
        return bundle_root() / "resources" / name
    return Path(path(name))


def seconds_since_process_start() -> float | None:
    """Wall time since the process (the bootloader, when frozen) started; Linux only."""
    try:
        stat = Path("/proc/self/stat").read_text()
        uptime = float(Path("/proc/uptime").read_text().split()[0])
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name may hold spaces
    start_ticks = int(fields[19])  # field 22 of proc(5), counted after the name
    return uptime - start_ticks / os.sysconf("SC_CLK_TCK")


def _expected_files() -> dict[str, list[str]]:
    if is_frozen():
        manifest = bundle_root() / MANIFEST_NAME
        if not manifest.is_file():
            raise CheckFailed(f"{manifest} is missing from the bundle")
        data: dict[str, list[str]] = json.loads(manifest.read_text(encoding="utf-8"))
        return data
    spec = importlib.util.spec_from_file_location(
        "oss_desk_bundle_contents", _SOURCE_ROOT / "packaging" / "bundle_contents.py"
    )
    if spec is None or spec.loader is None:
        raise CheckFailed("packaging/bundle_contents.py is missing from the source tree")
    contents = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(contents)
    listed: dict[str, list[str]] = contents.manifest(_SOURCE_ROOT)
    return listed


def _check_inside_bundle(path: Path, what: str) -> None:
    if not path.is_file():
        raise CheckFailed(f"{what} {path} does not exist")
    if not is_frozen():
        return
    top = bundle_root().resolve()
    if sys.platform == "darwin":
        top = top.parent  # Contents/: data sits in Resources/, behind symlinks from Frameworks/
    if not path.resolve().is_relative_to(top):
        raise CheckFailed(f"{what} {path} resolves outside the bundle, to {path.resolve()}")


def check_files(run: Run) -> str:
    from metal_kernels.mxfp4_moe import MSL_DIR, MoeKernels

    expected = _expected_files()
    for name in expected["kernel_sources"]:
        _check_inside_bundle(MSL_DIR / name, "kernel source")
    built: list[dict[str, object]] = []
    MoeKernels(lambda **kernel: built.append(kernel))  # reads the sources the way a Mac does
    if not built or not all(k["source"] and k["header"] for k in built):
        raise CheckFailed("the Metal kernel launcher read empty sources")
    for name in expected["resources"]:
        _check_inside_bundle(resource_path(name), "resource")
    return (
        f"{len(expected['kernel_sources'])} kernel sources ({len(built)} kernels build), "
        f"{len(expected['resources'])} resources, under {bundle_root()}"
    )


def check_window(run: Run) -> str:
    os.environ.setdefault("QT_QPA_PLATFORM", run.qt_platform)
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or _new_application()
    window, label, release = _main_window(run.workdir / "app-data")
    try:
        window.show()
        app.processEvents()
        if not window.isVisible() or window.windowHandle() is None:
            raise CheckFailed(f"{label} did not become visible")
        run.startup_s = seconds_since_process_start()
    finally:
        window.close()
        release()
        window.deleteLater()
        app.processEvents()
    shown = f"{label} shown on {QApplication.platformName()}"
    if run.startup_s is None:
        return shown
    return f"{shown} {run.startup_s:.2f} s after process start"


def _new_application() -> QApplication:
    from PySide6.QtWidgets import QApplication

    try:
        from app.application import Application
    except ModuleNotFoundError as e:
        if e.name != "app.application":
            raise
        return QApplication([sys.argv[0]])
    return Application([sys.argv[0]])


def _main_window(data_dir: Path) -> tuple[QMainWindow, str, Callable[[], None]]:
    """The app's own window, built by its composition root with a fresh --data-dir (settings,
    history) and an engine thread without a model; a plain QMainWindow until that exists."""
    from PySide6.QtWidgets import QMainWindow

    try:
        from app.arguments import parse_args
        from app.launch import build
    except ModuleNotFoundError as e:
        if e.name not in ("app.arguments", "app.launch"):
            raise
        return QMainWindow(), "QMainWindow (app.launch does not exist yet)", lambda: None
    args, _ = parse_args(["--data-dir", str(data_dir)])
    window = build(args)

    def release() -> None:
        window.engine.shutdown()
        window.store.close()

    return window, "MainWindow", release


def _minimal_pdf(text: str) -> bytes:
    """A one-page PDF showing `text` in Helvetica (ASCII only), with a correct xref table."""
    stream = f"BT /F1 12 Tf 72 720 Td ({text}) Tj ET".encode("ascii")
    objects = [
        b"<< /Type /Catalog /Pages 2 0 R >>",
        b"<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
        b"<< /Type /Page /Parent 2 0 R /MediaBox [0 0 612 792] /Contents 4 0 R "
        b"/Resources << /Font << /F1 5 0 R >> >> >>",
        b"<< /Length %d >>\nstream\n%s\nendstream" % (len(stream), stream),
        b"<< /Type /Font /Subtype /Type1 /BaseFont /Helvetica >>",
    ]
    out = bytearray(b"%PDF-1.4\n")
    offsets = []
    for number, body in enumerate(objects, start=1):
        offsets.append(len(out))
        out += b"%d 0 obj\n%s\nendobj\n" % (number, body)
    xref = len(out)
    out += b"xref\n0 %d\n0000000000 65535 f \n" % (len(objects) + 1)
    out += b"".join(b"%010d 00000 n \n" % offset for offset in offsets)
    out += b"trailer\n<< /Size %d /Root 1 0 R >>\nstartxref\n%d\n%%%%EOF\n" % (
        len(objects) + 1,
        xref,
    )
    return bytes(out)


def check_documents(run: Run) -> str:
    import docx

    from engine import ReaderPool, extract

    folder = run.workdir / "documents"
    folder.mkdir()
    samples = {  # file -> (content, a phrase its text must contain)
        "note.txt": ("Plain text works.", "text works"),
        "note.md": ("# Self-test\n\nMarkdown works.", "Markdown works"),
        "table.csv": ("check,result\nCSV works,yes\n", "CSV works"),
        "page.html": ("<html><body><p>HTML works.</p></body></html>", "HTML works"),
    }
    for name, (content, _) in samples.items():
        (folder / name).write_text(content, encoding="utf-8")
    word = docx.Document()
    word.add_paragraph("DOCX works.")
    word.save(str(folder / "letter.docx"))
    (folder / "paper.pdf").write_bytes(_minimal_pdf("PDF works."))
    phrases = {name: phrase for name, (_, phrase) in samples.items()}
    phrases |= {"letter.docx": "DOCX works", "paper.pdf": "PDF works"}
    for name, phrase in phrases.items():
        document = extract(folder / name)
        if phrase not in document.text:
            raise CheckFailed(f"{name} extracted as {document.text[:80]!r}")
    # The app reads in a separate, limited process: in a bundle that is this program itself.
    pool = ReaderPool()
    try:
        read = pool.read(folder / "paper.pdf").result(timeout=60)
    finally:
        pool.shutdown()
    if "PDF works" not in read.text:
        raise CheckFailed(f"the reader process read paper.pdf as {read.text[:80]!r}")
    return f"{', '.join(sorted(phrases))} extracted; a reader process read paper.pdf"


def check_download(run: Run) -> str:
    from engine import download, plan_download

    # engine.testing is the engine's test kit, not its API; the self-test is the one app module
    # allowed to use it (tests/test_architecture.py lists the exception)
    from engine.testing import fake_hub, synthetic
    from engine.testing import synthetic_tokenizer as tokenizer_files

    repo = synthetic.write_checkpoint(
        run.workdir / "hub-repo", synthetic.tiny_config(vocab_size=N_VOCAB)
    )
    tokenizer_files.write_synthetic_tokenizer(repo)
    with fake_hub.FakeHub(repo) as hub:
        plan = plan_download(run.workdir / "gpt-oss", endpoint=hub.endpoint, token=False)
        run.model_dir = download(plan, lambda progress: None, threading.Event(), token=False)
    size = sum(p.stat().st_size for p in run.model_dir.iterdir() if p.is_file())
    return f"{len(plan.files)} files, {size / 1e6:.0f} MB from a loopback Hub"


def check_generate(run: Run) -> str:
    from engine import GREEDY, Finished, Token, load_model
    from metal_kernels.dispatch import last_choice

    if run.model_dir is None:
        raise CheckFailed("skipped: the download failed")
    model = load_model(run.model_dir)
    run.model = model
    events = list(model.generate([1, 2, 3], settings=GREEDY, max_tokens=MAX_TOKENS))
    tokens = [e.id for e in events if isinstance(e, Token)]
    if not isinstance(events[-1], Finished) or len(tokens) != MAX_TOKENS:
        raise CheckFailed(f"generation ended with {events[-1]!r} after {len(tokens)} tokens")
    backend = last_choice()
    where = f", {backend.name} experts" if backend else ""
    return f"tokens {tokens}{where}"


def check_chat(run: Run) -> str:
    from engine import (
        GREEDY,
        ChatSession,
        HarmonyTokenizer,
        LoadedModel,
        ReasoningBudget,
        TurnFinished,
    )

    if run.model_dir is None or not isinstance(run.model, LoadedModel):
        raise CheckFailed("skipped: the model did not load")
    tokenizer = HarmonyTokenizer.from_model_dir(run.model_dir, search_tiktoken_cache=False)
    budget = ReasoningBudget(low=MAX_TOKENS, medium=MAX_TOKENS, high=MAX_TOKENS)
    session = ChatSession(
        run.model, tokenizer, sampling=GREEDY, budget=budget, max_answer_tokens=MAX_TOKENS
    )
    events = list(session.send("Hello from the self-test."))
    done = events[-1]
    if not isinstance(done, TurnFinished):
        raise CheckFailed(f"the turn ended with {done!r}")
    stats = done.stats
    return (
        f"turn finished ({done.reason}): {stats.prompt_tokens} prompt tokens, "
        f"{stats.generated_tokens} generated"
    )


def check_python_tool(run: Run) -> str:
    # The bundle starts itself as the sandboxed interpreter (packaging/entry.py --python-tool),
    # and code the model writes may import any of the standard library.
    from engine import PythonTool

    reason = PythonTool.availability()
    if reason is not None:
        raise CheckFailed(f"the python tool cannot run here: {reason}")
    tool = PythonTool()
    try:
        code = "import fractions, statistics, xml.etree.ElementTree as ET\n"
        code += "print(fractions.Fraction(1, 3) + fractions.Fraction(1, 6), ET.__name__)"
        outcome = tool.call("python", code, threading.Event())
    finally:
        tool.close()
    if outcome.is_error or outcome.text.strip() != "1/2 xml.etree.ElementTree":
        raise CheckFailed(f"the sandboxed interpreter answered {outcome.text[:200]!r}")
    return f"a sandboxed interpreter ran standard-library code in {outcome.duration_s:.2f} s"


CHECKS: tuple[tuple[str, Callable[[Run], str]], ...] = (
    ("window", check_window),
    ("files", check_files),
    ("documents", check_documents),
    ("download", check_download),
    ("generate", check_generate),
    ("chat", check_chat),
    ("python", check_python_tool),
)


def run_checks(run: Run, checks: Sequence[tuple[str, Callable[[Run], str]]]) -> list[Outcome]:
    outcomes = []
    for name, check in checks:
        t0 = time.perf_counter()
        try:
            detail, ok = check(run), True
        except Exception as e:  # the report is the boundary: every failure becomes a line
            ok = False
            detail = str(e) if isinstance(e, CheckFailed) else f"{type(e).__name__}: {e}"
            if not isinstance(e, CheckFailed):
                traceback.print_exc(file=sys.stderr)
        outcome = Outcome(name, ok, detail, time.perf_counter() - t0)
        print(f"  {'ok' if ok else 'FAIL':<5} {name:<10} {detail}  ({outcome.seconds:.2f} s)")
        sys.stdout.flush()
        outcomes.append(outcome)
    return outcomes


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="oss-desk --self-test", description=__doc__)
    parser.add_argument("--self-test", action="store_true", help="(implied)")
    parser.add_argument(
        "--platform", default="offscreen", help="Qt platform when QT_QPA_PLATFORM is unset"
    )
    args, _ = parser.parse_known_args(argv)
    where = f"bundle at {bundle_root()}" if is_frozen() else f"source tree at {_SOURCE_ROOT}"
    print(f"OSS Desk self-test: {where}")
    print(f"  Python {platform.python_version()}, {platform.system()} {platform.machine()}")
    with tempfile.TemporaryDirectory(prefix="oss-desk-self-test-") as tmp:
        run = Run(workdir=Path(tmp), qt_platform=args.platform)
        outcomes = run_checks(run, CHECKS)
    failed = [o.name for o in outcomes if not o.ok]
    if run.startup_s is not None:
        print(f"startup_s: {run.startup_s:.3f}  (process start to a shown window)")
    total = time.perf_counter() - run.started
    if failed:
        print(f"self-test FAILED: {', '.join(failed)} ({len(outcomes)} checks, {total:.1f} s)")
        return 1
    print(f"self-test passed: {len(outcomes)} checks in {total:.1f} s")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
