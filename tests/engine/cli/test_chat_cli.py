"""`oss-desk-chat`: the read-answer loop in process with scripted model tokens, and the installed
console script as a subprocess (commands, Ctrl+C, end of input)."""

from __future__ import annotations

import io
import json
import os
import queue
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import IO

import pytest

from engine import ChatSession, HarmonyTokenizer, LoadedModel, Message, ReasoningEffort, Role
from engine.cli.chat import ChatRepl
from engine.cli.display import DIM, RESET
from engine.testing.scripted import ScriptedSampler, cancel_at, reply_ids

REPLY = [Message.assistant("The user greets.", channel="analysis"), Message.assistant("Hello!")]


def repl(
    model: LoadedModel,
    tok: HarmonyTokenizer,
    script: list[int],
    lines: str,
    *,
    color: bool = False,
) -> tuple[ChatRepl, io.StringIO, int]:
    session = ChatSession(model, tok, sampler=ScriptedSampler(script))
    out = io.StringIO()
    loop = ChatRepl(session, io.StringIO(lines), out, color=color)
    return loop, out, loop.run()


def test_answers_show_reasoning_then_answer_then_stats(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    _, out, code = repl(model, tok, reply_ids(tok, REPLY), "Hi\n")
    assert code == 0  # end of input exits cleanly
    text = out.getvalue()
    assert "> [reasoning] The user greets.\n[answer] Hello!\n" in text
    assert "time to first token" in text and "(0 cached)" in text


def test_on_a_terminal_reasoning_is_dimmed(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    _, out, _ = repl(model, tok, reply_ids(tok, REPLY), "Hi\n", color=True)
    assert f"{DIM}The user greets.{RESET}\nHello!\n" in out.getvalue()


def test_commands_change_effort_reset_and_quit(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    lines = "Hi\n/effort high\n/effort extreme\n/reset\n/bogus\n/quit\nnever read\n"
    loop, out, code = repl(model, tok, reply_ids(tok, REPLY), lines)
    text = out.getvalue()
    assert code == 0
    assert loop.session.effort is ReasoningEffort.HIGH and loop.session.messages == ()
    assert "(reasoning effort: high)" in text
    assert "choose one of low, medium, high" in text
    assert "(conversation cleared)" in text and "(unknown command /bogus)" in text


def test_a_tool_call_without_tools_is_answered_with_an_error(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    call = reply_ids(tok, [Message.tool_call("functions.lookup", {"q": "x"})])
    loop, out, _ = repl(model, tok, call + reply_ids(tok, REPLY[1:]), "Hi\n")
    assert "(tool call functions.lookup:" in out.getvalue()
    roles = [(m.role, m.text) for m in loop.session.messages]
    (result,) = [text for role, text in roles if role is Role.TOOL]
    assert "this chat has no tools" in json.loads(result)["error"]
    assert roles[-1] == (Role.ASSISTANT, "Hello!")


def test_a_cancelled_answer_says_so(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    sampler = ScriptedSampler(reply_ids(tok, REPLY))
    out = io.StringIO()
    loop = ChatRepl(ChatSession(model, tok, sampler=sampler), io.StringIO("Hi\n"), out)
    sampler.on_sample = cancel_at(3, loop.cancel)  # what Ctrl+C does, after the 3rd token
    assert loop.run() == 0
    assert "(stopped)" in out.getvalue()


class _Lines:
    """Collects a pipe's output on a thread, so the test can wait for text without blocking."""

    def __init__(self, stream: IO[str]) -> None:
        self.text = ""
        self._chunks: queue.Queue[str] = queue.Queue()
        threading.Thread(target=self._pump, args=(stream,), daemon=True).start()

    def _pump(self, stream: IO[str]) -> None:
        while chunk := stream.read(1):
            self._chunks.put(chunk)

    def poll(self) -> str:
        while not self._chunks.empty():
            self.text += self._chunks.get()
        return self.text

    def wait_for(self, needle: str, timeout: float = 60) -> str:
        deadline = time.monotonic() + timeout
        while needle not in self.text:
            try:
                self.text += self._chunks.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"{needle!r} not seen in {self.text!r}") from None
        return self.text


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a child process")
def test_console_script_chats_and_ctrl_c_stops_an_answer(model_dir: Path) -> None:
    script = Path(sys.executable).with_name("oss-desk-chat")
    assert script.is_file(), "run: .venv/bin/pip install --no-deps -e ."
    # random weights never stop by themselves: with large limits only Ctrl+C ends the answer
    args = ["--model", str(model_dir), "--dtype", "float32", "--temperature", "0"]
    args += ["--max-tokens", "100000", "--reasoning-budget", "100000"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    proc = subprocess.Popen(
        [str(script), *args],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    assert proc.stdin is not None and proc.stdout is not None
    try:
        out = _Lines(proc.stdout)
        out.wait_for("> ")
        proc.stdin.write("/effort low\n")
        proc.stdin.flush()
        out.wait_for("(reasoning effort: low)")
        proc.stdin.write("Hi\n")
        proc.stdin.flush()
        # Ctrl+C until the answer stops: one that comes before the answer starts only prints
        # a hint at the prompt
        for _ in range(60):
            time.sleep(0.5)
            proc.send_signal(signal.SIGINT)
            if "(stopped)" in out.poll():
                break
        out.wait_for("(stopped)")
        out.wait_for("time to first token")
        proc.stdin.close()  # end of input: exit
        assert proc.wait(timeout=30) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
