"""Turns that may run tools (python, MCP servers): the engine thread's side, and the round trip
that asks the user before a call runs.

`ToolTurns` lives with the EngineWorker on the engine thread. Per chat it keeps the providers the
app's settings ask for (python's interpreter state belongs to one chat) and what the user allowed
"for this chat"; it closes them when the chat is deleted, when nothing the model did is left in
the chat (its first message is sent, edited or regenerated), when the settings change what they
would be, when more than MAX_OPEN_CHATS chats have tools, and when the app quits.

Approval: the tool loop calls `approve` on the engine thread, which emits `approval_requested`
(a queued signal: the UI shows the dialog) and blocks until `answer_approval` is called from the
UI thread, or the turn's cancel event is set (then the call does not run and
`approval_withdrawn` tells the UI). `answer_approval` is a plain thread-safe method, not a slot:
the engine thread is blocked in the wait, so a slot queued to it would never run. The decision
crosses threads as a value; a failing dialog declines (app/tool_approval.py ApprovalBridge).
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from PySide6.QtCore import QObject, Signal, Slot

import engine
from app.history import HistoryError, HistoryStore
from app.history_bridge import step_record
from app.messages import ErrorInfo
from app.remote_session import RemoteSession
from engine import (
    ApprovalRequest,
    Approvals,
    ChatEvent,
    CitationsResolved,
    Decision,
    ProvidersMade,
    ToolProvider,
    ToolStep,
    make_tool_providers,
)

if TYPE_CHECKING:
    from engine import BrowserSession, ChatSession, ExtractedDocument, LoopEvents, ToolLoop

log = logging.getLogger(__name__)

# Chats whose providers stay open (python interpreters, MCP server processes) at once.
MAX_OPEN_CHATS = 3
# How often the wait for the user's answer looks at the turn's cancel event: one wait cannot
# watch two threading.Events, and a tenth of a second is well under what a person notices.
APPROVAL_POLL_S = 0.1


class ToolsChoice(Protocol):
    """What the app's settings say about tools (app/settings.py Settings has these fields)."""

    @property
    def python_tool_enabled(self) -> bool: ...
    @property
    def mcp_servers_json(self) -> str: ...
    @property
    def always_approved_tools(self) -> list[str]: ...


ProviderFactory = Callable[[ToolsChoice], ProvidersMade]


@runtime_checkable
class ReportsStatus(Protocol):
    """A provider that says how its servers are doing (McpTools); thread-safe."""

    def status(self) -> tuple[Any, ...]: ...


@runtime_checkable
class TakesDocuments(Protocol):
    """A provider whose code can read the chat's attached documents (PythonTool)."""

    @property
    def documents_path(self) -> str: ...
    def attach(self, paths: Iterable[str | Path]) -> list[str]: ...


def documents_note(folder: str) -> str:
    """The developer message's line telling the model where the python tool finds the files the
    user attached (their text is in the user message; the code may want the file itself)."""
    return f"The python tool can read copies of the files the user attaches in {folder}."


def settings_providers(choice: ToolsChoice) -> ProvidersMade:
    """The real factory: python if enabled (and its sandbox works), the configured MCP servers."""
    return make_tool_providers(
        python=choice.python_tool_enabled, mcp_servers_json=choice.mcp_servers_json
    )


@dataclass
class _ChatTools:
    key: tuple[bool, str]  # the settings the providers were made from
    providers: tuple[ToolProvider, ...]
    approvals: Approvals

    def close(self) -> None:
        for provider in self.providers:
            try:
                provider.close()
            except Exception:  # one provider failing to close must not keep the others open
                log.exception("closing the tool provider %r failed", provider)


class TurnTools:
    """One turn's tools: what the worker hands to the document library or runs on its own."""

    def __init__(self, tools: _ChatTools, approve: engine.Approver) -> None:
        self.providers = tools.providers
        self.approvals = tools.approvals
        self.approve = approve

    @property
    def notes(self) -> tuple[str, ...]:
        """The instructions' lines about the tools, for a server (a ChatSession gets them in
        `loop`): where the python tool finds the attached files."""
        return tuple(_note(p) for p in self.providers if isinstance(p, TakesDocuments))

    def loop(self, session: ChatSession, browser: BrowserSession | None = None) -> ToolLoop:
        for provider in self.providers:
            if isinstance(provider, TakesDocuments):
                # Every turn, so instructions the worker just set get it too; the same line
                # each time keeps the prompt (and the KV cache prefix) unchanged.
                session.set_instructions(_with_line(session.instructions, _note(provider)))
        return engine.ToolLoop(
            session,
            browser,
            providers=self.providers,
            approver=self.approve,
            approvals=self.approvals,
        )

    def attach_documents(self, documents: Iterable[ExtractedDocument]) -> None:
        """Copies the turn's attached files (those still on disk) to where the code reads them."""
        paths = [d.path for d in documents if d.path.is_file()]
        for provider in self.providers:
            if paths and isinstance(provider, TakesDocuments):
                try:
                    provider.attach(paths)
                except OSError as e:  # the answer goes on; the code will not find the file
                    log.warning("copying documents for the python tool failed: %s", e)

    def recording(
        self,
        events: Iterable[ChatEvent | ToolStep | CitationsResolved],
        store: HistoryStore | None,
        message_id: int,
    ) -> LoopEvents:
        """The loop's events, each python or function step saved on the answer before it is
        shown (as the answer's text is)."""
        failed = store is None or message_id <= 0
        for event in events:
            if isinstance(event, ToolStep) and event.kind in ("python", "function") and not failed:
                assert store is not None
                try:
                    store.add_tool_step(message_id, step_record(event))
                except (HistoryError, KeyError) as e:  # KeyError: the chat was deleted
                    failed = True  # the answer's own text reports a failed store once
                    log.warning("saving a tool step failed: %s", e)
            yield event


class ToolTurns(QObject):
    approval_requested = Signal(object)  # ApprovalRequest: ask the user, then answer_approval
    approval_withdrawn = Signal(object)  # ApprovalRequest: Stop was pressed; close the question
    always_approved = Signal(str)  # a recipient the user allowed always: save it in settings

    def __init__(
        self,
        choice: Callable[[], ToolsChoice] | None,
        *,
        warn: Callable[[ErrorInfo], None],
        factory: ProviderFactory = settings_providers,
        parent: QObject | None = None,
    ) -> None:
        """`choice` reads the settings (a frozen snapshot, so any thread may call it); None: no
        tools at all (tests, a bare worker)."""
        super().__init__(parent)
        self._choice = choice
        self._warn = warn
        self.factory = factory  # replaceable: tests give their own providers
        self._chats: OrderedDict[int, _ChatTools] = OrderedDict()
        self._warned: set[str] = set()
        self._lock = threading.Lock()
        self._reporting: tuple[ReportsStatus, ...] = ()  # the MCP tools of the last chat with tools
        self._pending: ApprovalRequest | None = None
        self._answer = Decision.DECLINE
        self._answered = threading.Event()

    # -- the engine thread -------------------------------------------------------------

    def for_turn(self, session: object, conversation_id: int, *, fresh: bool) -> TurnTools | None:
        """The chat's tools for this turn (None: it has none, or the session cannot run them);
        `fresh`: nothing the model did is left in the chat, so neither is the tools' state."""
        if self._choice is None or not _runs_tools(session):
            if self._choice is not None and isinstance(session, RemoteSession):
                self._say_server_takes_no_tools(session)
            return None
        choice = self._choice()
        key = (choice.python_tool_enabled, choice.mcp_servers_json)
        chat = self._chats.get(conversation_id)
        if chat is not None and (fresh or chat.key != key):
            local = session if isinstance(session, engine.ChatSession) else None
            self._close(conversation_id, local)
            chat = None
        if chat is None:
            chat = self._open(conversation_id, choice, key)
        self._chats.move_to_end(conversation_id)
        chat.approvals.always = set(choice.always_approved_tools)
        with self._lock:
            self._reporting = tuple(p for p in chat.providers if isinstance(p, ReportsStatus))
        if not chat.providers:
            return None
        return TurnTools(chat, self.approve)

    def approve(self, request: ApprovalRequest, cancel: threading.Event) -> Decision:
        """The tool loop's Approver: asks the UI and waits for its answer or for Stop."""
        with self._lock:
            self._pending, self._answer = request, Decision.DECLINE
            self._answered.clear()
        self.approval_requested.emit(request)
        try:
            while not self._answered.wait(APPROVAL_POLL_S):
                if cancel.is_set():
                    self.approval_withdrawn.emit(request)
                    return Decision.DECLINE
            if self._answer is Decision.ALWAYS:
                self.always_approved.emit(request.recipient)
            return self._answer
        finally:
            with self._lock:
                self._pending = None

    @Slot(int)
    def forget(self, conversation_id: int) -> None:
        """The chat was deleted: its tools stop."""
        self._close(conversation_id)

    @Slot()
    def close(self) -> None:
        """The app quits: every chat's tools stop."""
        for conversation_id in list(self._chats):
            self._close(conversation_id)

    # -- any thread --------------------------------------------------------------------

    def mcp_status(self) -> tuple[Any, ...]:
        """Each MCP server of the chat that last used tools, as its tools report it (running,
        failed and why, ...), for Settings › Tools; () before any chat has used them."""
        with self._lock:
            reporting = self._reporting
        return tuple(status for provider in reporting for status in provider.status())

    def answer_approval(self, decision: Decision, request: ApprovalRequest | None = None) -> None:
        """The user's answer to the question on screen; ignored when it is no longer asked
        (Stop came first) or when `request` is another question than the one waiting."""
        with self._lock:
            if self._pending is None or (request is not None and request != self._pending):
                log.info("an approval answer came after its question was withdrawn")
                return
            self._answer = decision
            self._answered.set()

    # -- helpers -----------------------------------------------------------------------

    def _open(self, conversation_id: int, choice: ToolsChoice, key: tuple[bool, str]) -> _ChatTools:
        made = self.factory(choice)
        for problem in made.problems:
            if problem not in self._warned:  # once per run: every chat would say the same
                self._warned.add(problem)
                self._warn(ErrorInfo("A tool is not available", problem))
        chat = _ChatTools(key, made.providers, Approvals())
        self._chats[conversation_id] = chat
        while len(self._chats) > MAX_OPEN_CHATS:
            self._close(next(iter(self._chats)))
        return chat

    def _say_server_takes_no_tools(self, session: RemoteSession) -> None:
        assert self._choice is not None
        choice = self._choice()
        if not (choice.python_tool_enabled or choice.mcp_servers_json.strip()):
            return
        problem = (
            f"Answers come from {session.config.host}, which does not take function tools, so "
            "Python and MCP servers are not offered there; use a server that does, or a model "
            "on this Mac, to use them."
        )
        if problem not in self._warned:
            self._warned.add(problem)
            self._warn(ErrorInfo("Tools are not available with this server", problem))

    def _close(self, conversation_id: int, session: ChatSession | None = None) -> None:
        chat = self._chats.pop(conversation_id, None)
        if chat is None:
            return
        if session is not None:
            undeclare_tools(session, chat.providers)
        with self._lock:
            self._reporting = tuple(p for p in self._reporting if p not in chat.providers)
        chat.close()


def _runs_tools(session: object) -> bool:
    """A local chat runs tools in its loop; a server's chat offers them as functions, if the
    server takes function tools (its probe says)."""
    if isinstance(session, RemoteSession):
        return session.tools
    return isinstance(session, engine.ChatSession)


def undeclare_tools(session: ChatSession, providers: Sequence[ToolProvider]) -> None:
    """Takes the providers' namespaces and functions out of the session again (the settings
    changed them), so the next loop declares only what is offered now."""
    namespaces = {ns.name for p in providers for ns in p.system_namespaces()}
    functions = {f.name for p in providers for f in p.functions()}
    system = session.system
    kept = tuple(ns for ns in system.tools if ns.name not in namespaces)
    if kept != system.tools:
        session.set_system(replace(system, tools=kept))
    tools = [t for t in session.tools if t.name not in functions]
    instructions = session.instructions
    for provider in providers:
        if isinstance(provider, TakesDocuments):
            instructions = _without_line(instructions, _note(provider))
    if len(tools) != len(session.tools) or instructions != session.instructions:
        session.set_tools(tools, instructions)


def _note(provider: TakesDocuments) -> str:
    return documents_note(provider.documents_path)


def _with_line(text: str | None, line: str) -> str:
    if text and line in text.split("\n"):
        return text
    return f"{text}\n\n{line}" if text else line


def _without_line(text: str | None, line: str) -> str | None:
    if not text:
        return text
    kept = "\n".join(part for part in text.split("\n") if part != line).rstrip("\n")
    return kept or None
