"""A harmony chat on one loaded model: conversation, reasoning effort, sampling and the KV cache.

Each turn renders the whole conversation (earlier turns' analysis dropped) and prefills only
what the cache does not already hold, after rewinding the cache to the longest prefix it shares
with the new prompt (see engine.chat.context). Methods that start a turn check everything that
can be checked up front and raise EngineError subclasses then; the returned iterator reports
everything else as events and always ends with TurnFinished. One turn at a time: iterate it to
the end (or close it) before starting the next. The session is not thread-safe; use it from the
thread that owns MLX.

With an output schema (`set_output_schema`), each turn's final message is constrained to JSON
that validates against it (engine.chat.structured); the analysis and tool calls stay free.
"""

from __future__ import annotations

import threading
from collections.abc import Generator, Iterable, Sequence
from dataclasses import replace
from typing import Any

from engine.chat.budget import ReasoningBudget
from engine.chat.context import DEFAULT_MAX_SNAPSHOTS, CachedContext
from engine.chat.events import ChatEvent, ToolCallRequested
from engine.chat.prompt import Prompt, build_prompt, last_user_index
from engine.chat.structured import CompiledSchema, FinalChannelConstraint, compile_schema
from engine.chat.tool_calls import ToolCatalog, tool_call
from engine.chat.turn import Run, RunLimits
from engine.errors import ContextOverflowError
from engine.generate import DEFAULT_PREFILL_STEP
from engine.harmony import (
    Channel,
    Conversation,
    DeveloperContent,
    Message,
    ReasoningEffort,
    Role,
    SystemContent,
    ToolDescription,
)
from engine.inference import LoadedModel
from engine.sampling import Sampler, SamplingSettings, make_sampler
from engine.tokenizer import HarmonyTokenizer

DEFAULT_MAX_ANSWER_TOKENS = 8192
# A turn's events; `close()` it to stop early (the text so far is kept, as when cancelled).
TurnEvents = Generator[ChatEvent, None, None]


class ChatSession:
    def __init__(
        self,
        model: LoadedModel,
        tokenizer: HarmonyTokenizer,
        *,
        effort: ReasoningEffort | str = ReasoningEffort.MEDIUM,
        sampling: SamplingSettings | None = None,
        budget: ReasoningBudget | None = None,
        max_answer_tokens: int = DEFAULT_MAX_ANSWER_TOKENS,
        system: SystemContent | None = None,
        instructions: str | None = None,
        tools: Sequence[ToolDescription] = (),
        messages: Iterable[Message] = (),
        prefill_step: int = DEFAULT_PREFILL_STEP,
        max_snapshots: int = DEFAULT_MAX_SNAPSHOTS,
        sampler: Sampler | None = None,
    ) -> None:
        """`system` supplies identity, dates and built-in tools (its effort is replaced by
        `effort`); `instructions` and `tools` form the developer message; `messages` is saved
        history (user, assistant and tool messages). `sampler` replaces sampling from
        `sampling` (an engine-internal hook: tests script the model's tokens with it)."""
        if max_answer_tokens < 1 or prefill_step < 1:
            raise ValueError("max_answer_tokens and prefill_step must be positive")
        self._model = model
        self._tokenizer = tokenizer
        self._effort = ReasoningEffort(effort)
        self._sampling = sampling or SamplingSettings()
        self._budget = budget or ReasoningBudget()
        self._max_answer_tokens = self._default_answer_tokens = max_answer_tokens
        self._system = system or SystemContent()
        self._instructions = instructions
        self._tools = tuple(tools)
        self._messages = _checked_history(messages)
        self._prefill_step = prefill_step
        self._sampler = sampler
        self._context = CachedContext(model, max_snapshots=max_snapshots)
        self._output_schema: CompiledSchema | None = None
        self._running = False
        self._turn_id = 0

    @classmethod
    def from_messages(
        cls,
        model: LoadedModel,
        tokenizer: HarmonyTokenizer,
        messages: Iterable[Message],
        **options: Any,
    ) -> ChatSession:
        """A session that continues saved history; the cache fills on the next turn."""
        return cls(model, tokenizer, messages=messages, **options)

    # -- state -----------------------------------------------------------------------------

    @property
    def messages(self) -> tuple[Message, ...]:
        """The conversation without system and developer messages, analysis included."""
        return self._messages

    @property
    def effort(self) -> ReasoningEffort:
        return self._effort

    def set_effort(self, effort: ReasoningEffort | str) -> None:
        self._effort = ReasoningEffort(effort)

    @property
    def sampling(self) -> SamplingSettings:
        return self._sampling

    def set_sampling(self, settings: SamplingSettings) -> None:
        self._sampling = settings

    @property
    def budget(self) -> ReasoningBudget:
        return self._budget

    def set_budget(self, budget: ReasoningBudget) -> None:
        self._budget = budget

    @property
    def tools(self) -> tuple[ToolDescription, ...]:
        return self._tools

    def set_tools(self, tools: Sequence[ToolDescription], instructions: str | None = None) -> None:
        """Replaces the developer message; the cache keeps whatever prefix still matches."""
        self._tools = tuple(tools)
        self._instructions = instructions

    @property
    def instructions(self) -> str | None:
        return self._instructions

    def set_instructions(self, instructions: str | None) -> None:
        """Replaces the developer message's instructions (its tools stay) from the next turn;
        the cache keeps whatever prefix still matches."""
        self._instructions = instructions

    @property
    def max_answer_tokens(self) -> int:
        return self._max_answer_tokens

    def set_max_answer_tokens(self, tokens: int | None) -> None:
        """Caps each later turn's final-channel tokens (a turn that reaches it ends "length");
        None goes back to the cap the session was made with."""
        if tokens is not None and tokens < 1:
            raise ValueError("max_answer_tokens must be positive")
        self._max_answer_tokens = self._default_answer_tokens if tokens is None else tokens

    @property
    def output_schema(self) -> dict[str, Any] | None:
        return dict(self._output_schema.schema) if self._output_schema else None

    def set_output_schema(self, schema: dict[str, Any] | None) -> None:
        """Constrains the final message of later turns to JSON that validates against `schema`
        (structured output; the analysis stays free); None removes it. Raises
        OutputSchemaError for a schema that cannot be compiled."""
        if schema is None:
            self._output_schema = None
            return
        self._output_schema = compile_schema(self._tokenizer, schema, self._model.args.vocab_size)

    @property
    def system(self) -> SystemContent:
        return self._system

    def set_system(self, system: SystemContent) -> None:
        """Replaces the system content (e.g. to add the browser tool from this turn onward);
        the cache keeps whatever prefix still matches."""
        self._system = system

    @property
    def pending_tool_call(self) -> ToolCallRequested | None:
        """The call the last turn ended with, while it awaits its result."""
        if not self._messages:
            return None
        last = self._messages[-1]
        if last.role is not Role.ASSISTANT or last.recipient is None:
            return None
        channel = last.channel or ""
        return tool_call(last.recipient, last.text, channel, last.content_type, self._catalog())

    @property
    def cached_tokens(self) -> tuple[int, ...]:
        """The token ids the KV cache holds, in order."""
        return self._context.tokens

    @property
    def context(self) -> CachedContext:
        """The KV cache and its token ids (engine-internal: the prompt cache saves and restores
        it between turns, never while one runs)."""
        self._check_idle()
        return self._context

    def conversation(self) -> Conversation:
        """Everything the next prompt renders, before earlier turns' analysis is dropped."""
        return self._conversation(self._messages)

    def prompt_ids(self, *, follow_up: bool = False) -> list[int]:
        """The token ids the next model run would see (ending with `<|start|>assistant`).

        With `follow_up`, after an empty user message, as `send` renders it: the last reply's
        analysis is dropped then, so this is what a restored cache should be matched against."""
        messages = (*self._messages, Message.user("")) if follow_up else self._messages
        return list(build_prompt(self._tokenizer, self._conversation(messages)).ids)

    def reset(self) -> None:
        """Forgets the conversation. The cache stays, so the next turn reuses the system
        prompt."""
        self._check_idle()
        self._messages = ()

    # -- turns -----------------------------------------------------------------------------

    # Every turn takes two events the caller may set from another thread: `cancel` stops it at
    # the next token; `finish` ("Finish now") ends the reasoning so the model answers at once.

    def send(
        self,
        text: str,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
    ) -> TurnEvents:
        """Adds a user message and answers it."""
        return self._start((*self._messages, Message.user(text)), cancel, finish)

    def regenerate(
        self, cancel: threading.Event | None = None, finish: threading.Event | None = None
    ) -> TurnEvents:
        """Answers the last user message again, dropping the previous answer."""
        last = last_user_index(self._messages)
        if last is None:
            raise ValueError("there is no user message to answer")
        return self._start(self._messages[: last + 1], cancel, finish)

    def edit_last_user_message(
        self,
        text: str,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
    ) -> TurnEvents:
        """Replaces the last user message (dropping what followed it) and answers it."""
        last = last_user_index(self._messages)
        if last is None:
            raise ValueError("there is no user message to edit")
        return self._start((*self._messages[:last], Message.user(text)), cancel, finish)

    def continue_answer(
        self, cancel: threading.Event | None = None, finish: threading.Event | None = None
    ) -> TurnEvents:
        """Goes on from the conversation as it stands, which ends with the assistant's own
        reasoning (a client gave back reasoning it cut short with "Finish now")."""
        if not self._messages or self._messages[-1].role is not Role.ASSISTANT:
            raise ValueError("the conversation does not end with the assistant's reasoning")
        return self._start(self._messages, cancel, finish)

    def submit_tool_result(
        self,
        call: ToolCallRequested,
        result_text: str,
        cancel: threading.Event | None = None,
        finish: threading.Event | None = None,
        *,
        channel: str = Channel.COMMENTARY,
    ) -> TurnEvents:
        """Gives the model the output of the tool call the last turn ended with, and continues
        that turn. Built-in tools answer on the call's own channel (`channel=call.channel`), as
        gpt-oss's reference tools do."""
        if call != self.pending_tool_call:
            raise ValueError(f"{call.recipient} is not the tool call awaiting a result")
        result = Message.tool_result(call.recipient, result_text, channel=channel)
        return self._start((*self._messages, result), cancel, finish)

    def _start(
        self,
        messages: tuple[Message, ...],
        cancel: threading.Event | None,
        finish: threading.Event | None,
    ) -> TurnEvents:
        self._check_idle()
        prompt = build_prompt(self._tokenizer, self._conversation(messages))
        room = self._model.max_context
        if len(prompt.ids) >= room:
            raise ContextOverflowError(
                f"The conversation needs {len(prompt.ids):,} tokens but the model's context "
                f"holds {room:,}. Start a new conversation or shorten the message."
            )
        self._messages = messages
        self._turn_id += 1
        return self._run(prompt, cancel or threading.Event(), finish, self._turn_id)

    def _run(
        self,
        prompt: Prompt,
        cancel: threading.Event,
        finish: threading.Event | None,
        turn_id: int,
    ) -> TurnEvents:
        if turn_id != self._turn_id:
            raise RuntimeError("this turn's iterator was superseded by a later turn")
        self._check_idle()
        self._running = True
        limits = RunLimits(
            reasoning_tokens=self._budget.for_effort(self._effort),
            answer_tokens=self._max_answer_tokens,
            max_context=self._model.max_context,
            prefill_step=self._prefill_step,
            loop=self._budget,
        )
        sampler = self._sampler or make_sampler(self._sampling)
        schema = self._output_schema
        constraint = FinalChannelConstraint(schema) if schema is not None else None
        self._context.start(constraint.wrap(sampler) if constraint is not None else sampler)
        run = Run(
            self._context,
            self._tokenizer,
            prompt,
            limits,
            cancel,
            self._catalog(),
            finish,
            constraint,
        )
        try:
            yield from run.events()
        finally:
            # Also when the consumer stops early or the model fails: keep what was written.
            self._messages = (*self._messages, *run.messages)
            self._context.repair()
            self._running = False

    def _check_idle(self) -> None:
        if self._running:
            raise RuntimeError("a turn is still running: finish or close its iterator first")

    def _catalog(self) -> ToolCatalog:
        return ToolCatalog.of(self._system, self._tools)

    def _conversation(self, messages: Sequence[Message]) -> Conversation:
        system = Message.system(replace(self._system, reasoning_effort=self._effort))
        head = [system]
        if self._instructions is not None or self._tools:
            head.append(Message.developer(DeveloperContent(self._instructions, self._tools)))
        return Conversation((*head, *messages))


def _checked_history(messages: Iterable[Message]) -> tuple[Message, ...]:
    history = tuple(messages)
    for message in history:
        if message.role in (Role.SYSTEM, Role.DEVELOPER):
            raise ValueError(
                "history holds user, assistant and tool messages; pass system content and "
                "developer instructions and tools as session options"
            )
    return history
