"""The README's screenshots: the real app, a scripted conversation, light and dark.

    .venv/bin/python docs/screenshots/make_screenshots.py           # under Xvfb, X screenshots
    .venv/bin/python docs/screenshots/make_screenshots.py --grab    # no X: QWidget.grab()

Writes docs/screenshots/conversation-light.png and conversation-dark.png (1280x800).

What runs is the app itself (app.main.build: settings, history, engine thread, window) on a
model folder made on the fly: a tiny synthetic gpt-oss checkpoint with the real vocabulary and a
synthetic tokenizer. Random weights write no sensible text, so the model's tokens are scripted
(engine.testing.scripted): the model, KV cache, harmony parser and streaming all run for real,
but the words are the ones below. The numbers in the facts line are that tiny model's, not
gpt-oss-20b's. A PDF (fpdf2) is attached to the question, so the sent message lists it, and a
Word file (python-docx) waits as a chip in the composer. The appearance comes from the app's own
Settings (theme, reasoning left expanded), written to the --data-dir settings file.

Each theme runs in its own process. With an X server (Xvfb is started on a free display, or
$DISPLAY is used with --display) the window is captured by the X server (`import -window`, or
`xwd` + `convert`); without one, or with --grab, the window grabs itself offscreen.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # run as a script from anywhere
    sys.path.insert(0, str(ROOT))

OUT_DIR = Path(__file__).resolve().parent
SIZE = (1280, 800)
THEMES = ("light", "dark")
MODEL_NAME = "tiny-synthetic-gpt-oss"
SIDEBAR_WIDTH = 300
TIMEOUT_S = 120.0

# What a dark system supplies (macOS's dark appearance, roughly): the app's dark.qss styles its
# own surfaces and takes the rest, palette(base) and friends, from the system palette.
DARK_PALETTE = {
    "Window": "#262626",
    "WindowText": "#E5E5EA",
    "Base": "#1E1E1E",
    "AlternateBase": "#2C2C2E",
    "Text": "#E5E5EA",
    "Button": "#3A3A3C",
    "ButtonText": "#E5E5EA",
    "BrightText": "#FFFFFF",
    "Highlight": "#0A84FF",
    "HighlightedText": "#FFFFFF",
    "PlaceholderText": "#8E8E93",
    "Link": "#4DA3FF",
    "ToolTipBase": "#3A3A3C",
    "ToolTipText": "#E5E5EA",
    "Light": "#4A4A4C",
    "Midlight": "#3A3A3C",
    "Mid": "#2C2C2E",
    "Dark": "#111111",
    "Shadow": "#000000",
}

EARLIER_CHATS = [
    (
        "What does YaRN change in RoPE?",
        "YaRN stretches the rotary frequencies so positions past the trained context still "
        "map to angles the model has seen.",
    ),
    (
        "Sliding vs full attention layers",
        "gpt-oss alternates them: sliding layers see the last 128 tokens, full layers see all.",
    ),
]

QUESTION = "How does gpt-oss store weights in MXFP4?"

REASONING = (
    "The user attached notes on microscaling formats and asks how gpt-oss stores the expert "
    "weights. Key points: blocks of 32 values; each value is an E2M1 nibble, two per byte; one "
    "E8M0 scale byte per block, a power of two with bias 127. Only the MoE expert projections "
    "are quantized; attention, router, embedding and unembedding stay bf16. A short "
    "dequantization function and a table of bits per weight would make it concrete."
)

ANSWER = """\
**MXFP4** is the 4-bit *microscaling* format of the Open Compute Project. gpt-oss keeps the \
weights of its mixture-of-experts layers in it; every other tensor stays in bf16.

Each row is cut into blocks of 32 values. A block is 16 bytes of E2M1 codes (two per byte, \
low nibble first) plus one E8M0 scale byte:

```python
FP4 = [0.0, 0.5, 1.0, 1.5, 2.0, 3.0, 4.0, 6.0,
       -0.0, -0.5, -1.0, -1.5, -2.0, -3.0, -4.0, -6.0]

def dequantize(block: bytes, scale: int) -> list[float]:
    factor = 2.0 ** (scale - 127)
    return [FP4[n] * factor for b in block for n in (b & 0x0F, b >> 4)]
```

| tensor | format | bits per weight |
|---|---|---:|
| expert MLPs | MXFP4 | 4.25 |
| attention, router | bf16 | 16 |
| embedding, unembedding | bf16 | 16 |

Decoding a token reads only the experts the router picks (4 of 32 per layer in the 20b), so \
the kernels work on the packed bytes directly instead of expanding whole matrices.
"""

DRAFT = "And what changes with the 16 GB memory profile?"

NOTES = [
    "Microscaling (MX) formats",
    "An MX block holds 32 elements that share one 8-bit scale (E8M0: a power of two, "
    "bias 127). MXFP4 elements are E2M1: one sign bit, two exponent bits, one mantissa bit.",
    "The sixteen E2M1 values are 0, 0.5, 1, 1.5, 2, 3, 4 and 6, each positive or negative.",
    "Storage: 32 x 4 bits + 8 bits = 136 bits per block, i.e. 4.25 bits per element.",
]


# --- inputs made on the fly ------------------------------------------------------------------


def make_model(folder: Path) -> Path:
    """A tiny gpt-oss checkpoint with the real vocabulary, plus a synthetic tokenizer."""
    from engine.testing.synthetic import tiny_config, write_checkpoint
    from engine.testing.synthetic_tokenizer import write_synthetic_tokenizer
    from engine.tokenizer import N_VOCAB

    out = folder / MODEL_NAME
    write_checkpoint(out, tiny_config(vocab_size=N_VOCAB))
    write_synthetic_tokenizer(out)
    return out


def make_pdf(path: Path) -> Path:
    from fpdf import FPDF

    pdf = FPDF()
    pdf.set_title(NOTES[0])
    for page, lines in enumerate((NOTES[:3], NOTES[3:])):
        pdf.add_page()
        pdf.set_font("Helvetica", "B" if page == 0 else "", 16 if page == 0 else 12)
        for i, line in enumerate(lines):
            if page == 0 and i == 1:
                pdf.set_font("Helvetica", "", 12)
            pdf.multi_cell(0, 8, line)
            pdf.ln(4)
    pdf.output(str(path))
    return path


def make_docx(path: Path) -> Path:
    import docx

    document = docx.Document()
    document.add_heading("Memory profiles", level=1)
    document.add_paragraph(
        "Full keeps attention and the unembedding in bf16; the 16 GB profile stores them in "
        "8 bits and keeps a smaller KV cache."
    )
    document.save(str(path))
    return path


# --- the app, driven (runs in the child process) ---------------------------------------------


def wait_until(app: Any, done: Callable[[], bool], what: str, timeout_s: float = TIMEOUT_S) -> None:
    from PySide6.QtCore import QEventLoop

    end = time.monotonic() + timeout_s
    while not done():
        if time.monotonic() > end:
            raise TimeoutError(f"timed out waiting for {what}")
        app.processEvents(QEventLoop.ProcessEventsFlag.AllEvents, 50)
        time.sleep(0.01)


def settle(app: Any, seconds: float) -> None:
    end = time.monotonic() + seconds
    wait_until(app, lambda: time.monotonic() > end, "a pause")


def drive(theme: str, model_dir: Path, pdf: Path, docx_file: Path, out: Path, grab: bool) -> None:
    """Build the real window, play the conversation, and save one screenshot."""
    import argparse as ap

    from PySide6.QtCore import Qt
    from PySide6.QtTest import QTest

    from app.application import Application
    from app.main import build
    from app.settings import SettingsStore, Theme
    from engine import ChatSession, HarmonyTokenizer, Message
    from engine.testing.scripted import ScriptedSampler, reply_ids

    data_dir = model_dir.parent / f"data-{theme}"  # in the parent's temporary folder
    data_dir.mkdir()
    # The app's Settings object, in the --data-dir settings file the app reads at start.
    SettingsStore.in_file(data_dir / "settings.ini").update(
        theme=Theme(theme), collapse_reasoning_when_done=False, show_reasoning=True
    )
    app = Application([sys.argv[0]])
    if theme == "dark":
        use_dark_system_palette(app)
    tokenizer = HarmonyTokenizer.from_model_dir(model_dir)
    sampler = ScriptedSampler()

    def sessions(model: Any, tok: Any, history: Any) -> ChatSession:
        return ChatSession.from_messages(model, tok, history, sampler=sampler)

    def script(answer: str, analysis: str | None = None) -> None:
        messages = [Message.assistant(analysis, channel="analysis")] if analysis else []
        sampler.extend(reply_ids(tokenizer, [*messages, Message.assistant(answer)]))

    args = ap.Namespace(model=None, data_dir=str(data_dir), profile="full", files=[])
    window = build(args, session_factory=sessions)
    window.resize(*SIZE)
    window.move(0, 0)
    window.splitter.setSizes([SIDEBAR_WIDTH, SIZE[0] - SIDEBAR_WIDTH])  # as if dragged
    window.show()
    window.load_model(str(model_dir))
    wait_until(app, lambda: window.engine.model is not None, "the model to load")

    def send(text: str) -> None:
        turns: list[Any] = []
        window.controller.turn_completed.connect(turns.append)
        window.composer.set_text(text)
        QTest.keyClick(window.composer.input, Qt.Key.Key_Return)
        wait_until(app, lambda: bool(turns), f"the answer to {text!r}")
        window.controller.turn_completed.disconnect(turns.append)
        if turns[0].error is not None or turns[0].status != "complete":
            raise RuntimeError(f"the turn failed: {turns[0]}")

    for question, answer in EARLIER_CHATS:
        window.controller.new_chat()
        script(answer, analysis="A short factual answer is enough here.")
        send(question)
    window.controller.new_chat()
    window.open_files([str(pdf)])
    wait_until(app, lambda: bool(window.attachments.ready()), "the PDF to be read")
    script(ANSWER, analysis=REASONING)
    send(QUESTION)
    window.open_files([str(docx_file)])
    wait_until(app, lambda: bool(window.attachments.ready()), "the Word file to be read")
    window.composer.set_text(DRAFT)
    window.view.verticalScrollBar().setValue(0)  # from the question down
    settle(app, 1.0)
    capture(window, out, grab)
    window.close()
    window.engine.shutdown()
    window.store.close()


def use_dark_system_palette(app: Any) -> None:
    """Qt's xcb and offscreen platforms have no dark palette of their own (a Mac has), so the
    Theme setting alone would darken only what dark.qss paints itself; give them one."""
    from PySide6.QtGui import QColor, QPalette

    palette = app.palette()
    if palette.color(QPalette.ColorRole.Window).lightness() < 128:
        return  # the platform is dark already
    for role, color in DARK_PALETTE.items():
        palette.setColor(getattr(QPalette.ColorRole, role), QColor(color))
    disabled = QPalette.ColorGroup.Disabled
    for role in ("WindowText", "Text", "ButtonText"):
        palette.setColor(disabled, getattr(QPalette.ColorRole, role), QColor("#6E6E73"))
    app.setPalette(palette)


def capture(window: Any, out: Path, grab: bool) -> None:
    """A real X screenshot of the window when there is an X server; else QWidget.grab()."""
    from PySide6.QtGui import QGuiApplication

    x11 = QGuiApplication.platformName() == "xcb" and not grab
    window_id = f"0x{int(window.winId()):x}"
    if x11 and shutil.which("import"):
        subprocess.run(["import", "-window", window_id, str(out)], check=True)
    elif x11 and shutil.which("xwd") and shutil.which("convert"):
        dump = out.with_suffix(".xwd")
        subprocess.run(["xwd", "-silent", "-id", window_id, "-out", str(dump)], check=True)
        subprocess.run(["convert", str(dump), str(out)], check=True)
        dump.unlink()
    elif not window.grab().save(str(out), "PNG"):
        raise RuntimeError(f"could not save {out}")
    how = "X server" if x11 else "QWidget.grab()"
    print(f"wrote {out.relative_to(ROOT)} ({out.stat().st_size // 1024} KiB, {how})")


# --- the parent: inputs, X server, one child per theme ---------------------------------------


@contextmanager
def xvfb(width: int, height: int) -> Iterator[str]:
    """Xvfb on a display it picks itself (-displayfd); yields ':N'."""
    read, write = os.pipe()
    screen = ["-screen", "0", f"{width}x{height}x24"]
    server = subprocess.Popen(
        ["Xvfb", "-displayfd", str(write), *screen, "-nolisten", "tcp"],
        pass_fds=(write,),
        stderr=subprocess.DEVNULL,
    )
    os.close(write)
    try:
        with os.fdopen(read) as pipe:
            number = pipe.readline().strip()
        if not number:
            raise RuntimeError("Xvfb did not start")
        yield f":{number}"
    finally:
        server.terminate()
        server.wait(10)


def run_children(display: str | None, grab: bool, folder: Path) -> None:
    model = make_model(folder)
    pdf = make_pdf(folder / "mxfp4-notes.pdf")
    docx_file = make_docx(folder / "memory-profiles.docx")
    env = dict(os.environ)
    if display is not None:
        env |= {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    else:
        env |= {"QT_QPA_PLATFORM": "offscreen"}
    for theme in THEMES:
        cmd = [sys.executable, __file__, "--child", theme, "--model", str(model)]
        cmd += ["--pdf", str(pdf), "--docx", str(docx_file)]
        cmd += ["--grab"] if grab else []
        subprocess.run(cmd, env=env, check=True, cwd=ROOT)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Make the README screenshots.")
    p.add_argument("--grab", action="store_true", help="QWidget.grab() instead of X capture")
    p.add_argument("--display", action="store_true", help="use $DISPLAY, do not start Xvfb")
    p.add_argument("--child", choices=THEMES, help=argparse.SUPPRESS)
    p.add_argument("--model", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--pdf", type=Path, help=argparse.SUPPRESS)
    p.add_argument("--docx", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        out = OUT_DIR / f"conversation-{args.child}.png"
        drive(args.child, args.model, args.pdf, args.docx, out, args.grab)
        return 0
    with tempfile.TemporaryDirectory(prefix="oss-desk-screenshots-") as tmp:
        if args.display and os.environ.get("DISPLAY"):
            run_children(os.environ["DISPLAY"], args.grab, Path(tmp))
        elif not args.grab and shutil.which("Xvfb"):
            with xvfb(*SIZE) as display:
                run_children(display, args.grab, Path(tmp))
        else:
            run_children(None, True, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
