"""The tool loop with tool providers (python, functions) through a real ChatSession: the tiny
synthetic checkpoint computes, a scripted sampler writes gpt-oss's calls, and two small real
providers answer them (arithmetic standing in for the python sandbox, a counter for an MCP
function; the real providers have their own tests)."""

from __future__ import annotations

import ast
import json
import operator
import threading
from collections.abc import Callable, Iterable
from typing import Any

from engine import ChatSession, HarmonyTokenizer, LoadedModel
from engine.chat import Approvals, ToolLoop, TurnFinished
from engine.chat.prompt import build_prompt
from engine.chat.tool_loop import answer_now_text
from engine.chat.tool_steps import STEP_OUTPUT_CHARS, provider_step
from engine.harmony import ToolDescription, ToolNamespace, python_namespace
from engine.testing.scripted import ScriptedSampler
from engine.tools import DECLINED_TEXT, ApprovalRequest, Decision, ToolOutcome, ToolProvider
from tests.engine.chat.test_tool_loop import run_turn, steps, tool_messages

_OPERATORS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Add: operator.add,
    ast.Sub: operator.sub,
    ast.Mult: operator.mul,
    ast.Div: operator.truediv,
    ast.Pow: operator.pow,
}


class Arithmetic:
    """The `python` tool, for arithmetic only: evaluates the code's expression."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.closed = False

    def system_namespaces(self) -> tuple[ToolNamespace, ...]:
        return (python_namespace(),)

    def functions(self) -> tuple[ToolDescription, ...]:
        return ()

    def handles(self, recipient: str) -> bool:
        return recipient == "python"

    def needs_approval(self, recipient: str) -> bool:
        return True

    def call(self, recipient: str, arguments: str, cancel: threading.Event) -> ToolOutcome:
        self.calls.append(arguments)
        try:
            value = _evaluate(ast.parse(arguments.strip(), mode="eval").body)
        except (SyntaxError, ValueError, ZeroDivisionError) as e:
            return ToolOutcome(f"{type(e).__name__}: {e}", is_error=True)
        return ToolOutcome(str(value))

    def close(self) -> None:
        self.closed = True


def _evaluate(node: ast.expr) -> Any:
    if isinstance(node, ast.Constant) and isinstance(node.value, int | float):
        return node.value
    if isinstance(node, ast.BinOp) and type(node.op) in _OPERATORS:
        return _OPERATORS[type(node.op)](_evaluate(node.left), _evaluate(node.right))
    raise ValueError(f"not arithmetic: {ast.dump(node)[:40]}")


class Counter:
    """An MCP-like function provider: `functions.count` adds `by` to a running total."""

    DESCRIPTION = ToolDescription(
        "count",
        "Adds `by` to the counter and returns the total.",
        {"type": "object", "properties": {"by": {"type": "number"}}, "required": ["by"]},
    )

    def __init__(self) -> None:
        self.total = 0
        self.calls = 0

    def system_namespaces(self) -> tuple[ToolNamespace, ...]:
        return ()

    def functions(self) -> tuple[ToolDescription, ...]:
        return (self.DESCRIPTION,)

    def handles(self, recipient: str) -> bool:
        return recipient == "functions.count"

    def needs_approval(self, recipient: str) -> bool:
        return True

    def describe(self, recipient: str) -> str:
        return "count (MCP server “tally”)"

    def call(self, recipient: str, arguments: str, cancel: threading.Event) -> ToolOutcome:
        self.calls += 1
        self.total += int(json.loads(arguments)["by"])
        return ToolOutcome(json.dumps({"total": self.total}))

    def close(self) -> None:
        pass


class Approver:
    """Answers each request with the next scripted decision, and records what it was asked."""

    def __init__(self, *decisions: Decision, on_ask: Callable[[], None] | None = None) -> None:
        self.decisions = list(decisions)
        self.asked: list[ApprovalRequest] = []
        self.on_ask = on_ask

    def __call__(self, request: ApprovalRequest, cancel: threading.Event) -> Decision:
        self.asked.append(request)
        if self.on_ask is not None:
            self.on_ask()
        if cancel.is_set():
            return Decision.DECLINE
        return self.decisions.pop(0)


def python_call(code: str, channel: str = "analysis") -> str:
    return f"<|channel|>{channel} to=python code<|message|>{code}<|call|>"


def count_call(by: int) -> str:
    return (
        "<|channel|>commentary to=functions.count <|constrain|>json"
        f'<|message|>{{"by": {by}}}<|call|>'
    )


def answer(text: str) -> str:
    return (
        "<|channel|>analysis<|message|>Done.<|end|>"
        f"<|start|>assistant<|channel|>final<|message|>{text}<|return|>"
    )


def session_for(
    model: LoadedModel, tok: HarmonyTokenizer, script: Iterable[str]
) -> tuple[ChatSession, ScriptedSampler]:
    sampler = ScriptedSampler()
    session = ChatSession(model, tok, sampler=sampler)
    script_more(sampler, tok, script)
    return session, sampler


def script_more(sampler: ScriptedSampler, tok: HarmonyTokenizer, script: Iterable[str]) -> None:
    sampler.extend(t for part in script for t in tok.encode(part, allowed_special="all"))


def rendered(tok: HarmonyTokenizer, session: ChatSession) -> str:
    return tok.decode(build_prompt(tok, session.conversation()).ids)


def test_python_then_a_function_then_the_answer(model: LoadedModel, tok: HarmonyTokenizer) -> None:
    script = [python_call("2 + 3 * 4"), count_call(5), answer("It is 14; the tally is 5.")]
    session, sampler = session_for(model, tok, script)
    arithmetic, counter = Arithmetic(), Counter()
    approver = Approver(Decision.ONCE, Decision.ONCE)
    loop = ToolLoop(session, providers=[arithmetic, counter], approver=approver)

    events, finished = run_turn(loop, "What is 2 + 3 * 4? Then count 5.")
    assert finished.reason == "stop" and finished.answer == "It is 14; the tally is 5."
    assert sampler.remaining == 0
    assert arithmetic.calls == ["2 + 3 * 4"] and counter.total == 5

    # One question per call, showing exactly what would run.
    assert approver.asked == [
        ApprovalRequest("python", "Python", "2 + 3 * 4", "python"),
        ApprovalRequest("functions.count", "count (MCP server “tally”)", '{"by": 5}', "json"),
    ]
    python, count = steps(events)
    assert (python.kind, python.ok, python.number, python.declined) == ("python", True, 1, False)
    assert (python.arguments, python.language, python.output) == ("2 + 3 * 4", "python", "14")
    assert python.duration_s is not None and 0 <= python.duration_s < 5
    assert python.summary.startswith("ran Python (")
    assert (count.kind, count.ok, count.number, count.output) == (
        "function",
        True,
        2,
        '{"total": 5}',
    )
    assert count.summary.startswith("called count (MCP server “tally”) (")

    # Python answers as `python` on the call's channel; a function on commentary.
    assert tool_messages(session) == [
        ("python", "analysis", "14"),
        ("functions.count", "commentary", '{"total": 5}'),
    ]
    prompt = rendered(tok, session)
    assert "## python\n\nUse this tool to execute Python code" in prompt  # system message
    assert "namespace functions {" in prompt and "type count = (_: {" in prompt  # developer
    assert "<|start|>python to=assistant<|channel|>analysis<|message|>14<|end|>" in prompt


def test_the_tools_are_declared_once_so_the_prompt_prefix_stays(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, _ = session_for(model, tok, [answer("One."), answer("Two.")])
    providers: list[ToolProvider] = [Arithmetic(), Counter()]
    first = ToolLoop(session, providers=providers)
    head = session.prompt_ids()[:-2]  # system and developer messages, without <|start|>assistant
    run_turn(first, "First?")
    system, tools = session.system, session.tools
    # The app builds a new loop every turn: the session's tools must not change.
    _, finished = run_turn(ToolLoop(session, providers=providers), "Second?")
    assert session.system is system and session.tools is tools
    assert [ns.name for ns in system.tools] == ["python"]
    assert [t.name for t in tools] == ["count"]
    assert session.prompt_ids()[: len(head)] == head
    assert finished.stats.reused_tokens >= len(head)  # the KV cache kept that prefix


def test_allowed_for_this_chat_stops_asking_and_always_is_reported(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    script = [python_call("1 + 1"), python_call("2 + 2"), count_call(1), answer("4.")]
    session, _ = session_for(model, tok, script)
    saved: list[str] = []
    approvals = Approvals(on_always=saved.append)
    approver = Approver(Decision.CHAT, Decision.ALWAYS)
    loop = ToolLoop(
        session, providers=[Arithmetic(), Counter()], approver=approver, approvals=approvals
    )
    run_turn(loop, "Add.")
    # Asked for the first python call only, then for the function (another tool).
    assert [r.recipient for r in approver.asked] == ["python", "functions.count"]
    assert approvals.chat == {"python"} and saved == ["functions.count"]

    # Next turn, a new loop with the chat's approvals: nothing is asked again.
    script_more(_sampler(session), tok, [python_call("3 + 3"), count_call(2), answer("6.")])
    again = Approver()
    loop = ToolLoop(session, providers=loop.providers, approver=again, approvals=approvals)
    _, finished = run_turn(loop, "More.")
    assert finished.answer == "6." and again.asked == []

    # Another chat: "always" came from the settings, "for this chat" did not.
    other, _ = session_for(model, tok, [python_call("5"), count_call(3), answer("ok")])
    fresh = Approver(Decision.ONCE)
    loop = ToolLoop(
        other,
        providers=[Arithmetic(), Counter()],
        approver=fresh,
        approvals=Approvals(always=saved),
    )
    run_turn(loop, "Again.")
    assert [r.recipient for r in fresh.asked] == ["python"]


def _sampler(session: ChatSession) -> ScriptedSampler:
    sampler = session._sampler
    assert isinstance(sampler, ScriptedSampler)
    return sampler


def test_a_declined_call_never_runs_and_the_model_reads_that(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, _ = session_for(model, tok, [python_call("6 * 7"), answer("I could not run it.")])
    arithmetic = Arithmetic()
    loop = ToolLoop(session, providers=[arithmetic], approver=Approver(Decision.DECLINE))
    events, finished = run_turn(loop, "6 * 7?")
    assert finished.answer == "I could not run it." and arithmetic.calls == []
    (step,) = steps(events)
    assert step.declined and not step.ok and step.output == "" and step.duration_s is None
    assert step.arguments == "6 * 7" and step.summary == "not run: the user declined Python"
    assert tool_messages(session) == [("python", "analysis", DECLINED_TEXT)]
    assert f"<|start|>python to=assistant<|channel|>analysis<|message|>{DECLINED_TEXT}" in (
        rendered(tok, session)
    )


def test_without_an_approver_a_call_that_needs_one_is_declined(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    session, _ = session_for(model, tok, [python_call("1 + 2"), answer("No.")])
    arithmetic = Arithmetic()
    events, _ = run_turn(ToolLoop(session, providers=[arithmetic]), "1 + 2?")
    assert arithmetic.calls == [] and steps(events)[0].declined


def test_stop_while_the_user_decides_ends_the_turn_with_no_call_run(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    script = [python_call("9 * 9"), answer("Never written.")]
    session, sampler = session_for(model, tok, script)
    cancel = threading.Event()
    arithmetic = Arithmetic()
    # The user presses Stop while the approval is on screen.
    approver = Approver(Decision.ONCE, on_ask=cancel.set)
    loop = ToolLoop(session, providers=[arithmetic], approver=approver)
    events = list(loop.send("9 * 9?", cancel))
    finished = events[-1]
    assert isinstance(finished, TurnFinished) and finished.reason == "cancel"
    assert arithmetic.calls == [] and len(approver.asked) == 1
    (step,) = steps(events)
    assert not step.ok and not step.declined and step.summary.startswith("not run: stopped")
    assert tool_messages(session) == []
    assert sampler.remaining == len(tok.encode(answer("Never written."), allowed_special="all"))
    session.reset()  # the session is idle: this would raise if a turn were still running


def test_browser_and_provider_calls_share_the_call_limit(
    model: LoadedModel, tok: HarmonyTokenizer
) -> None:
    script = [python_call("1 + 1"), count_call(1), answer("Enough.")]
    session, _ = session_for(model, tok, script)
    counter = Counter()
    loop = ToolLoop(
        session,
        providers=[Arithmetic(), counter],
        approver=Approver(Decision.ONCE),
        max_calls=1,
    )
    events, finished = run_turn(loop, "Go.")
    assert finished.answer == "Enough."
    assert [s.kind for s in steps(events)] == ["python", "limit"] and counter.calls == 0
    assert tool_messages(session)[1] == ("functions.count", "commentary", answer_now_text(1))


TRACEBACK = "Traceback (most recent call last):\nZeroDivisionError: division by zero"


def test_a_failed_call_and_a_long_output_read_clearly() -> None:
    failed = provider_step(
        "python",
        "Python",
        "1/0",
        1,
        ToolOutcome(
            "Traceback (most recent call last):\nZeroDivisionError: division by zero", True
        ),
        duration_s=0.25,
    )
    assert not failed.ok
    assert failed.summary == "Python failed (250 ms): ZeroDivisionError: division by zero"
    long = provider_step("python", "Python", "print('x' * 10**5)", 2, ToolOutcome("x" * 10**5))
    assert len(long.output) < STEP_OUTPUT_CHARS + 200 and "characters cut" in long.output
