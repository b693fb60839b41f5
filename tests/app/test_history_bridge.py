"""Stored messages become the engine conversation the answers were written for; facts line."""

from __future__ import annotations

from app.history import StoredAttachment, StoredMessage, ToolCall
from app.history.facts import facts_text
from app.history_bridge import document_of, engine_history, user_prompt
from engine import HarmonyTokenizer, Message, compose_user_message
from engine.harmony import parse_messages


def _message(position: int, role: str, content: str, **fields: object) -> StoredMessage:
    base: dict[str, object] = {
        "id": position + 1,
        "conversation_id": 1,
        "position": position,
        "role": role,
        "content": content,
        "reasoning": "",
        "status": "complete",
        "effort": "medium" if role == "assistant" else None,
        "created_at": 0.0,
    }
    return StoredMessage(**(base | fields))  # type: ignore[arg-type]


ATTACHMENT = StoredAttachment(1, "notes.pdf", "pdf", 2, 40, "--- Page 1 ---\nhello", "abc")


def test_user_messages_are_composed_with_their_attachments_like_when_sent() -> None:
    stored = _message(0, "user", "Summarise", attachments=(ATTACHMENT,))
    expected = compose_user_message("Summarise", [document_of(ATTACHMENT)])
    assert user_prompt(stored) == expected
    assert expected.startswith('<document name="notes.pdf" kind="pdf" pages="2">')
    assert engine_history([stored]) == [Message.user(expected)]


def test_answers_keep_reasoning_as_analysis_and_replay_tool_calls() -> None:
    answer = _message(
        1,
        "assistant",
        "It is sunny.",
        reasoning="Need the weather.",
        tool_calls=(ToolCall("functions.weather", '{"city": "Oslo"}', '{"sky": "sun"}'),),
    )
    history = engine_history([_message(0, "user", "Weather?"), answer])
    assert [(m.role, m.channel, m.recipient, m.text) for m in history] == [
        ("user", None, None, "Weather?"),
        ("assistant", "analysis", None, "Need the weather."),
        ("assistant", "commentary", "functions.weather", '{"city": "Oslo"}'),
        ("tool", "commentary", "assistant", '{"sky": "sun"}'),
        ("assistant", "final", None, "It is sunny."),
    ]


def test_a_python_call_is_replayed_as_the_model_wrote_it_and_answered_where_it_asked(
    tok: HarmonyTokenizer,
) -> None:
    # What gpt-oss writes for the python tool, parsed as the live session keeps it.
    written = "<|start|>assistant<|channel|>analysis to=python code<|message|>print(2 + 2)<|call|>"
    (as_written,) = parse_messages(tok.encode(written, allowed_special="all"), tok)
    call = ToolCall("python", "print(2 + 2)", "4\n", kind="python", language="python")
    answer = _message(1, "assistant", "Four.", tool_calls=(call,))
    history = engine_history([_message(0, "user", "2 + 2?"), answer])
    assert history[1] == as_written
    assert (history[2].role, history[2].author.name, history[2].channel) == (
        "tool",
        "python",
        "analysis",
    )
    assert history[2].text == "4\n"


def test_an_answer_stopped_during_its_reasoning_keeps_only_the_analysis() -> None:
    stopped = _message(1, "assistant", "", reasoning="Half a thought", status="cancelled")
    history = engine_history([_message(0, "user", "Q"), stopped])
    assert [m.channel for m in history] == [None, "analysis"]


def test_facts_line_names_effort_time_tokens_speed_and_a_budget_cut() -> None:
    stats = {
        "thinking_s": 3.25,
        "reasoning_tokens": 1200,
        "answer_tokens": 80,
        "decode_tps": 31.04,
        "ttft_s": 0.412,
        "budget_cut": True,
        "cut_reason": "budget",
    }
    assert facts_text("high", stats) == (
        "High effort · thought for 3.2 s · 1,200 reasoning tokens · 80 answer tokens · "
        "31.0 tok/s · first token 0.41 s · the reasoning budget cut the thinking short"
    )
    assert facts_text(None, {}) == ""
