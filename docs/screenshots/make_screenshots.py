"""The README's screenshots: the real app, scripted scenes, under Xvfb.

    .venv/bin/python docs/screenshots/make_screenshots.py               # every image
    .venv/bin/python docs/screenshots/make_screenshots.py search-hit    # only some
    .venv/bin/python docs/screenshots/make_screenshots.py --grab        # no X: QWidget.grab()

Writes, 1280x800 each (shot_scenes.SCENES):
- conversation-light.png, conversation-dark.png: a question with a PDF, the reasoning pane, a
  Markdown answer, and a draft with several files waiting in the attachment tray;
- search-hit.png: a sidebar search, the hit's chat scrolled to the match, the words highlighted;
- finish-now.png: the model reasoning, captured while it streams, with Finish Now beside Stop;
- cited-answer.png: a 320-page PDF read with the browser tool (search, open, find), the steps in
  the reasoning pane, and an answer whose citations are numbered links;
- demo.png: `make demo`'s model answering on its own;
- python-approval.png, python-answer.png: the model's python code waiting for approval in a sheet,
  then run in the sandbox: the code and its output as a step of the reasoning pane, and the answer
  written from that output.

What runs is the app itself (app.launch.build: settings, history, engine thread, window) on a
tiny synthetic gpt-oss checkpoint with the real vocabulary and a synthetic tokenizer, made on the
fly (shot_inputs.py). Random weights write no sensible text, so the model's tokens are scripted
(shot_text.py): the model, KV cache, harmony parser, browser tool and streaming all run for
real, but the words are chosen in advance; in the cited answer, after each tool result, from
what the tool showed. The numbers in the facts lines are that tiny model's, not gpt-oss-20b's.
The demo image uses the demo model's own scripted replies (engine/testing/demo.py).

Each image is made in its own process. With an X server (Xvfb is started on a free display, or
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
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for folder in (ROOT, HERE):  # run as a script from anywhere
    if str(folder) not in sys.path:
        sys.path.insert(0, str(folder))

from shot_inputs import Inputs, make_all  # noqa: E402
from shot_window import SIZE  # noqa: E402

SCENE_NAMES = (
    "conversation",
    "search-hit",
    "finish-now",
    "cited-answer",
    "demo",
    "python-approval",
    "python-answer",
)


def image_name(scene: str, theme: str, themes: tuple[str, ...]) -> str:
    return f"{scene}-{theme}.png" if len(themes) > 1 else f"{scene}.png"


def run_child(scene: str, theme: str, inputs: Path, grab: bool) -> int:
    """In the child process: play one scene and write its image."""
    from shot_scenes import SCENES

    play, themes = SCENES[scene]
    play(theme, Inputs(inputs), HERE / image_name(scene, theme, themes), grab)
    return 0


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


def run_children(scenes: list[str], display: str | None, grab: bool, folder: Path) -> None:
    from shot_scenes import SCENES

    started = time.monotonic()
    inputs = Inputs(folder)
    make_all(inputs)
    print(f"inputs made in {time.monotonic() - started:.0f} s", flush=True)
    env = dict(os.environ)
    if display is not None:
        env |= {"DISPLAY": display, "QT_QPA_PLATFORM": "xcb"}
    else:
        env |= {"QT_QPA_PLATFORM": "offscreen"}
    for scene in scenes:
        for theme in SCENES[scene][1]:
            started = time.monotonic()
            cmd = [sys.executable, __file__, "--child", scene, "--theme", theme]
            cmd += ["--inputs", str(folder)] + (["--grab"] if grab else [])
            subprocess.run(cmd, env=env, check=True, cwd=ROOT)
            print(f"{scene} ({theme}): {time.monotonic() - started:.0f} s", flush=True)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Make the README screenshots.")
    p.add_argument("scenes", nargs="*", metavar="SCENE", help=f"of {', '.join(SCENE_NAMES)}")
    p.add_argument("--grab", action="store_true", help="QWidget.grab() instead of X capture")
    p.add_argument("--display", action="store_true", help="use $DISPLAY, do not start Xvfb")
    p.add_argument("--child", choices=SCENE_NAMES, help=argparse.SUPPRESS)
    p.add_argument("--theme", choices=("light", "dark"), help=argparse.SUPPRESS)
    p.add_argument("--inputs", type=Path, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return run_child(args.child, args.theme, args.inputs, args.grab)
    unknown = sorted(set(args.scenes) - set(SCENE_NAMES))
    if unknown:
        p.error(f"no scene {', '.join(unknown)}: choose among {', '.join(SCENE_NAMES)}")
    scenes = args.scenes or list(SCENE_NAMES)
    with tempfile.TemporaryDirectory(prefix="oss-desk-screenshots-") as tmp:
        if args.display and os.environ.get("DISPLAY"):
            run_children(scenes, os.environ["DISPLAY"], args.grab, Path(tmp))
        elif not args.grab and shutil.which("Xvfb"):
            with xvfb(*SIZE) as display:
                run_children(scenes, display, args.grab, Path(tmp))
        else:
            run_children(scenes, None, True, Path(tmp))
    return 0


if __name__ == "__main__":
    sys.exit(main())
