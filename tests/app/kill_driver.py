"""Runs OSS Desk offscreen with a scripted model that stalls mid-answer, and prints (one JSON line)
what the window shows once it has stalled; tests/app/test_kill.py then kills it with SIGKILL.

    python -m tests.app.kill_driver MODEL_DIR DATA_DIR
"""

from __future__ import annotations

import json
import sys

from PySide6.QtCore import QTimer

from app.application import Application
from app.arguments import parse_args
from app.launch import build, start
from app.message_widget import AssistantMessageWidget
from engine import HarmonyTokenizer
from tests.app.scripting import ScriptedSessions

STALL_AT = 80  # sampled tokens: the reasoning and part of the answer are on screen by then
POLL_MS = 20


def main() -> int:
    model_dir, data_dir = sys.argv[1:3]
    app = Application([sys.argv[0]])
    args, _ = parse_args(["--model", model_dir, "--data-dir", data_dir, "--profile", "full"])
    script = ScriptedSessions(HarmonyTokenizer.from_model_dir(model_dir))
    script.reply(" ".join(f"word{i}" for i in range(400)), analysis="Planning a long answer.")
    script.hold_at(STALL_AT)  # never released: the answer stays mid-stream until the kill
    window = build(args, session_factory=script)
    window.engine.model_loaded.connect(lambda _info: window.controller.send("Write a lot"))
    start(window, args)

    def report() -> None:
        widgets = window.view.messages()
        answer = widgets[-1] if widgets else None
        stalled = script.reached[STALL_AT].is_set()
        if not (isinstance(answer, AssistantMessageWidget) and stalled and answer.answer_text()):
            QTimer.singleShot(POLL_MS, report)  # a test driver may poll; the app never does
            return
        shown = answer.answer_text()
        facts = {
            "message_id": answer.message_id,
            "answer": shown,
            "reasoning": answer.thinking.text,
        }
        print(json.dumps(facts))
        sys.stdout.flush()

    report()
    return app.exec()


if __name__ == "__main__":
    sys.exit(main())
