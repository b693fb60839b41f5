"""What the user allowed without being asked again, and asking for the rest.

The tool loop asks before each call a provider says needs approval. "For this chat" is kept in
an `Approvals` that lives as long as the chat (the loop's own, or one the app keeps with the
chat's providers and passes to each turn's loop); "always" comes in from the app's settings and a
new one goes back out through `on_always`, so the app can save it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable

from engine.chat.tool_steps import ToolStep, provider_step
from engine.tools.approval import DECLINED_TEXT, ApprovalRequest, Approver, Decision
from engine.tools.base import ToolProvider


class Approvals:
    """The recipients ("python", "functions.NAME") that run without asking."""

    def __init__(
        self, always: Iterable[str] = (), on_always: Callable[[str], None] | None = None
    ) -> None:
        self.always: set[str] = set(always)
        self.chat: set[str] = set()
        self.on_always = on_always

    def allows(self, recipient: str) -> bool:
        return recipient in self.chat or recipient in self.always

    def remember(self, recipient: str, decision: Decision) -> None:
        if decision is Decision.CHAT:
            self.chat.add(recipient)
        elif decision is Decision.ALWAYS:
            self.always.add(recipient)
            if self.on_always is not None:
                self.on_always(recipient)

    def decide(
        self,
        request: ApprovalRequest,
        approver: Approver | None,
        cancel: threading.Event,
    ) -> Decision:
        """ONCE when already allowed, else the approver's answer (remembered). Without an
        approver nobody can say yes, so the call is declined."""
        if self.allows(request.recipient):
            return Decision.ONCE
        if approver is None or cancel.is_set():
            return Decision.DECLINE
        decision = approver(request, cancel)
        if decision is not Decision.DECLINE and not cancel.is_set():
            self.remember(request.recipient, decision)
        return decision


def call_title(provider: ToolProvider, recipient: str) -> str:
    """The tool's name for people: the provider's own `describe(recipient)` when it has one
    (McpTools names the tool and its server), else "Python" or the function's name."""
    describe = getattr(provider, "describe", None)
    if callable(describe):
        named = describe(recipient)
        if isinstance(named, str) and named.strip():
            return named
    if recipient == "python":
        return "Python"
    return recipient.removeprefix("functions.")


def argument_language(recipient: str) -> str:
    """How the arguments read: python's are code, a function's are JSON."""
    return "python" if recipient == "python" else "json"


def run_provider_call(
    provider: ToolProvider,
    recipient: str,
    arguments: str,
    number: int,
    approvals: Approvals,
    approver: Approver | None,
    cancel: threading.Event,
) -> tuple[ToolStep, str | None]:
    """Asks the user if the provider wants it, then runs one call: the step for the pane, and
    the text for the model (DECLINED_TEXT when declined; None when Stop came before the call
    ran, so the turn ends). Shared by the local tool loop and the remote one (app/)."""
    title = call_title(provider, recipient)
    waited = 0.0
    if provider.needs_approval(recipient):
        request = ApprovalRequest(recipient, title, arguments, argument_language(recipient))
        asked = time.monotonic()
        decision = approvals.decide(request, approver, cancel)
        waited = time.monotonic() - asked
        if cancel.is_set():
            return provider_step(recipient, title, arguments, number, None, waited_s=waited), None
        if decision is Decision.DECLINE:
            declined = provider_step(
                recipient, title, arguments, number, None, declined=True, waited_s=waited
            )
            return declined, DECLINED_TEXT
    if cancel.is_set():
        return provider_step(recipient, title, arguments, number, None, waited_s=waited), None
    started = time.monotonic()
    outcome = provider.call(recipient, arguments, cancel)
    took = time.monotonic() - started
    # Stop during the call still gives the model its result (as for the browser): the session's
    # next run ends at once, and the chat and its history hold the same messages.
    step = provider_step(
        recipient, title, arguments, number, outcome, duration_s=took, waited_s=waited
    )
    return step, outcome.text
