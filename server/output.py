"""A turn's ChatEvents as output items, the shape both APIs stream: reasoning (analysis),
message (final, or commentary without a recipient) and function_call (a message to
`functions.NAME`). Each item opens, grows by deltas and closes, in order, one at a time.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from typing import Literal, TypeAlias

from engine import ChannelDelta, ChatEvent, ToolCallRequested, TurnFinished

ItemKind: TypeAlias = Literal["reasoning", "message", "function_call"]
_PREFIX = {"reasoning": "rs", "message": "msg", "function_call": "fc"}


def new_id(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(16)}"


@dataclass
class Item:
    kind: ItemKind
    index: int
    id: str
    text: str = ""  # reasoning text, message text, or function arguments
    name: str | None = None  # function name, without the "functions." namespace
    call_id: str | None = None
    done: bool = False


@dataclass(frozen=True)
class Opened:
    item: Item


@dataclass(frozen=True)
class Delta:
    item: Item
    text: str


@dataclass(frozen=True)
class Closed:
    item: Item


Op: TypeAlias = Opened | Delta | Closed


class OutputAssembler:
    def __init__(self) -> None:
        self.items: list[Item] = []
        self.finished: TurnFinished | None = None
        self._open: Item | None = None

    def feed(self, event: ChatEvent) -> list[Op]:
        if isinstance(event, ChannelDelta):
            return self._delta(event)
        if isinstance(event, ToolCallRequested):
            return self._call(event)
        if isinstance(event, TurnFinished):
            self.finished = event
            return self._close()
        return []  # prefill progress and reasoning cuts have no output item

    @property
    def calls(self) -> list[Item]:
        return [item for item in self.items if item.kind == "function_call"]

    def _delta(self, event: ChannelDelta) -> list[Op]:
        kind: ItemKind
        name = None
        if event.recipient is not None:
            kind, name = "function_call", event.recipient.removeprefix("functions.")
        elif event.channel == "analysis":
            kind = "reasoning"
        else:
            kind = "message"
        ops: list[Op] = []
        current = self._open
        if current is None or current.kind != kind or current.name != name:
            ops += self._close()
            ops.append(Opened(self._start(kind, name)))
        item = self._open
        assert item is not None
        item.text += event.text
        ops.append(Delta(item, event.text))
        return ops

    def _call(self, event: ToolCallRequested) -> list[Op]:
        ops: list[Op] = []
        current = self._open
        if current is None or current.kind != "function_call" or current.name != event.name:
            ops += self._close()
            ops.append(Opened(self._start("function_call", event.name)))
        item = self._open
        assert item is not None
        item.text = event.arguments_json  # authoritative: the parser's whole message
        return ops + self._close()

    def _start(self, kind: ItemKind, name: str | None) -> Item:
        item = Item(kind, len(self.items), new_id(_PREFIX[kind]), name=name)
        if kind == "function_call":
            item.call_id = new_id("call")
        self.items.append(item)
        self._open = item
        return item

    def _close(self) -> list[Op]:
        item, self._open = self._open, None
        if item is None:
            return []
        item.done = True
        return [Closed(item)]
