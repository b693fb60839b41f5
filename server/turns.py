"""Running one Job from an HTTP handler: queue it, wait for its start, read its events, and
cancel its generation when the client goes away (an ASGI `http.disconnect`, not polling)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable
from typing import Any, TypeVar

from starlette.requests import Request

from engine import ChatEvent, TurnFinished
from server.errors import ApiError
from server.runner import Failed, Job, ModelRunner, QueueFullError, Started, Ticket

T = TypeVar("T")


class ClientGone(Exception):
    """The client disconnected before its answer was ready."""


async def start(request: Request, runner: ModelRunner, job: Job) -> Ticket:
    """Queues `job` and returns its ticket once the turn runs; a refusal becomes an ApiError."""
    ticket = Ticket(asyncio.get_running_loop())
    try:
        runner.submit(job, ticket)
    except QueueFullError as e:
        raise ApiError(
            503,
            f"The server is busy: {e}. Retry in a moment, or start the server with a longer "
            "--max-queue.",
            code="queue_full",
        ) from None
    first = await until_disconnect(request, ticket, ticket.next())
    if isinstance(first, Failed):
        raise ApiError(first.status, first.message, code=first.code, param=first.param)
    assert isinstance(first, Started)
    return ticket


async def events(ticket: Ticket) -> AsyncIterator[ChatEvent]:
    """The turn's events up to and including TurnFinished; a failure mid-turn raises ApiError."""
    while True:
        event = await ticket.next()
        if isinstance(event, Failed):
            raise ApiError(event.status, event.message, code=event.code)
        if isinstance(event, Started):
            continue
        yield event
        if isinstance(event, TurnFinished):
            return


async def until_disconnect(request: Request, ticket: Ticket, work: Awaitable[T]) -> T:
    """Awaits `work`; if the client disconnects first, cancels the turn and raises ClientGone."""
    task = asyncio.ensure_future(work)
    gone = asyncio.ensure_future(_disconnected(request))
    try:
        await asyncio.wait({task, gone}, return_when=asyncio.FIRST_COMPLETED)
    except asyncio.CancelledError:
        ticket.cancel.set()
        raise
    finally:
        gone.cancel()
    if not task.done():
        ticket.cancel.set()
        task.cancel()
        raise ClientGone
    return task.result()


async def _disconnected(request: Request) -> None:
    while (await request.receive())["type"] != "http.disconnect":
        pass


def sse(data: Any, event: str | None = None) -> bytes:
    """One server-sent event: optional `event:` line, one `data:` line, blank line."""
    head = f"event: {event}\n" if event else ""
    payload = data if isinstance(data, str) else json.dumps(data, separators=(",", ":"))
    return f"{head}data: {payload}\n\n".encode()
