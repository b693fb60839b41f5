"""`oss-desk-serve --distributed`: one server on a model split across an MLX group.

`mlx.launch` starts the same command on every Mac (README, "Bigger models"). Every process loads
only its slice (engine.distributed); rank 0 also owns the tokenizer and serves HTTP through the
ordinary RunnerThread, whose model is a DistributedLoadedModel, and the other ranks follow its
forward passes, printing nothing but their errors. Before loading, every rank checks its own
share against its own memory, and the ranks agree (one all-sum) so that a rank that cannot load
stops the whole group with its reason printed by rank 0.

Shutdown: SIGTERM to rank 0, or Ctrl-C in mlx.launch's terminal, ends uvicorn gracefully; rank 0
then releases the followers (`stop()`) and every process exits 0. Ctrl-C reaches every process
started on that machine at once, so the followers ignore SIGINT and wait for rank 0 to release
them. (Processes that mlx.launch started over ssh end with their ssh session instead.)

As on one process, a request reuses the KV cache of the previous one for the prefix they share
(a follow-up with previous_response_id prefills only the new messages): every process mirrors
the snapshots and restores of rank 0's cache (engine.distributed.runtime).

A lost process (a follower died, its Mac slept or lost its cable): the request in progress ends
with a 503 whose message is the engine's RankLostError, and so does every request after it; after
LOST_GRACE_S the server stops listening and rank 0 exits with EXIT_GROUP_LOST (75, EX_TEMPFAIL).
Why not keep serving: MLX cannot rebuild a group inside a running process, so the model is gone
for good; a server that stayed up answering 503 would hide a dead group from launchd, systemd or
a shell loop, while exiting lets them start the group again with mlx.launch. Why not exit at
once: the request in progress, and requests already on their way, deserve the reason rather
than a dropped connection. (mlx.launch itself ends the other processes as soon as one exits with
an error, which only makes this faster.)
"""

from __future__ import annotations

import argparse
import logging
import signal
import socket
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from engine import EngineError, HarmonyTokenizer, LoadedModel
from engine.distributed import DistributedError
from engine.memory.planner import GiB
from server.auth import KeyError_, default_key_file, resolve_key
from server.runner import Failed, Job, JobAnswerer, QueueFullError, RunnerThread, Ticket

if TYPE_CHECKING:
    import mlx.core as mx
    import uvicorn

    from engine.distributed.group import Link
    from engine.distributed.runtime import RankModel

log = logging.getLogger(__name__)

EXIT_GROUP_LOST = 75  # EX_TEMPFAIL, as engine.distributed.group exits for a silent peer
LOST_GRACE_S = 3.0  # requests already on their way still get the reason, then the server stops
SHUTDOWN_S = 5  # seconds: uvicorn's graceful shutdown, then rank 0 releases the followers
PLANNED_CONTEXT = 8192  # tokens of context each rank's share is checked for, as `recommend` does
LOST_CODE = "distributed_group_lost"
_MESSAGE_BYTES = 1024

ALONE = (
    "--distributed needs the processes of a group started by mlx.launch, but this process is "
    "alone. Run it on every Mac at once: mlx.launch --hostfile hosts.json --backend ring -- "
    '/path/to/.venv/bin/oss-desk-serve --model DIR --distributed (README, "Bigger models"); '
    "to serve from this Mac alone, leave out --distributed."
)


def serve_distributed(args: argparse.Namespace) -> int:
    """Runs this process's part of the group; the exit code of the process."""
    from engine.distributed import init_group

    try:
        group = init_group()
    except DistributedError as e:
        print(e, file=sys.stderr)
        return 1
    if group.size() == 1:
        print(ALONE, file=sys.stderr)
        return 2
    if group.rank() == 0:
        return _serve(args, group)
    # Quiet, and deaf to a terminal's Ctrl-C, which reaches every local process: rank 0 decides.
    logging.getLogger().setLevel(logging.WARNING)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    return _follow(args, group)


def _follow(args: argparse.Namespace, group: mx.distributed.Group) -> int:
    from engine.distributed.group import Link

    try:
        part, _, mine = _prepare(args, Link(group), problem=None)
        if part is None:
            if mine:
                print(mine, file=sys.stderr)
            return 1
        part.follow()
    except DistributedError as e:  # rank 0 or another follower is gone
        print(e, file=sys.stderr)
        return EXIT_GROUP_LOST
    return 0


def _prepare(
    args: argparse.Namespace, link: Link, problem: str | None
) -> tuple[RankModel | None, list[str], str | None]:
    """Every rank: checks its share, then loads its slice, agreeing with the others after each
    step. Returns this rank's model (None if any rank failed), every rank's problems and this
    rank's own."""
    from engine.distributed import load_rank_model

    rank, size = link.rank, link.group.size()
    problem = problem or _share_problem(args, rank, size)
    problems = _agree(link, problem, "checking memory")
    if problems:
        return None, problems, problem
    part = None
    try:
        part = load_rank_model(args.model, link.group)
    except (EngineError, OSError, ValueError, MemoryError) as e:
        problem = f"{_who(rank, size)} cannot load its slice of the model: {e}"
    problems = _agree(link, problem, "loading the model")
    return (None if problems else part), problems, problem


def _share_problem(args: argparse.Namespace, rank: int, size: int) -> str | None:
    """Why this rank cannot hold its share of the model (None: it can)."""
    from engine import ModelArgs, machine_budget
    from engine.inference import default_dtype
    from engine.memory.planner import plan_distributed

    try:
        plan = plan_distributed(
            ModelArgs.from_model_dir(args.model), size, default_dtype(), PLANNED_CONTEXT
        )[rank]
    except EngineError as e:
        return f"{_who(rank, size)} cannot use the model: {e}"
    if args.profile == "full":  # given explicitly: load anyway, as without --distributed
        return None
    usable = limited(machine_budget().usable, args.memory_limit)
    if plan.total <= usable:
        return None
    return (
        f"{_who(rank, size)} cannot hold its share of the model: it needs {_size(plan.total)} "
        f"at {PLANNED_CONTEXT:,} tokens of context and can give {_size(usable)}. Use more Macs "
        "or Macs with more memory, or pass --profile full to load it anyway."
    )


def limited(usable: int, limit_gib: float | None) -> int:
    """`usable` bytes, at most `limit_gib` (--memory-limit) when given."""
    return usable if limit_gib is None else min(usable, int(limit_gib * GiB))


def _who(rank: int, size: int) -> str:
    return f"Process {rank} of {size} ({socket.gethostname()})"


def _size(n: int) -> str:
    return f"{n / GiB:.1f} GiB" if n >= GiB else f"{n / 2**20:.1f} MiB"


def _agree(link: Link, problem: str | None, what: str) -> list[str]:
    """Every rank's problem, known to every rank (empty: none): each rank writes its message's
    UTF-8 bytes into its own row of one all-sum."""
    import mlx.core as mx
    import numpy as np

    rows = np.zeros((link.group.size(), _MESSAGE_BYTES), dtype=np.int32)
    if problem:
        data = problem.encode()[:_MESSAGE_BYTES]
        rows[link.rank, : len(data)] = np.frombuffer(data, dtype=np.uint8)
    with link.step(what):
        summed = mx.distributed.all_sum(mx.array(rows), group=link.group)
        mx.eval(summed)
    found = np.array(summed).astype(np.uint8)
    messages = [bytes(row).rstrip(b"\0").decode(errors="ignore") for row in found]
    return [m for m in messages if m]


class GroupAnswerer(JobAnswerer):
    """Rank 0's JobAnswerer: a lost process ends the job in progress and every later one with
    the engine's message (a 503), and `on_lost` is told once. `release` stops the followers
    from the runner thread, after any job in progress."""

    def __init__(self, on_lost: Callable[[str], None]) -> None:
        super().__init__()
        self.lost: str | None = None
        self._on_lost = on_lost
        self.release_error: str | None = None

    def answer(
        self, model: LoadedModel, tokenizer: HarmonyTokenizer, job: Job, ticket: Ticket
    ) -> None:
        if isinstance(ticket, _ReleaseTicket):
            self._release(model)
            ticket.done.set()
            return
        if self.lost is None:
            try:
                super().answer(model, tokenizer, job, ticket)
                return
            except DistributedError as e:  # the group is gone: no later job can run either
                self.lost, self.session = str(e), None
                self._on_lost(self.lost)
        ticket.emit(Failed(503, self.lost, code=LOST_CODE))

    def release(self, runner: RunnerThread, timeout: float) -> bool:
        """Queues the followers' release behind the jobs in the queue; False if it did not run
        within `timeout` s (a job that does not stop)."""
        ticket = _ReleaseTicket()
        deadline = time.monotonic() + timeout
        while True:
            try:
                runner.submit(Job(history=()), ticket)
                break
            except QueueFullError:  # cancelled requests still leaving the queue
                if time.monotonic() > deadline:
                    return False
                time.sleep(0.05)
        return ticket.done.wait(max(0.0, deadline - time.monotonic()))

    def _release(self, model: LoadedModel) -> None:
        from engine.distributed import DistributedLoadedModel

        if self.lost is not None:
            return  # nobody left to release
        assert isinstance(model, DistributedLoadedModel)
        try:
            model.stop()
        except DistributedError as e:  # a follower died while the server was idle
            self.lost = self.release_error = str(e)


class _ReleaseTicket(Ticket):
    """Not a request: tells the GroupAnswerer to release the followers."""

    def __init__(self) -> None:  # no event loop: nothing is emitted to it
        self.cancel = threading.Event()
        self.done = threading.Event()


def _serve(args: argparse.Namespace, group: mx.distributed.Group) -> int:
    import uvicorn

    from engine.distributed.group import Link
    from server.app import create_app
    from server.store import ResponseStore, default_path

    key, where, problem, store = "", "", None, None
    try:  # a problem here reaches the followers in the first agreement, and they stop
        key, where = resolve_key(args.host, args.api_key, args.api_key_file, default_key_file())
        store = ResponseStore(args.db or default_path())
    except KeyError_ as e:
        problem = str(e)
    except (OSError, sqlite3.Error) as e:
        problem = f"The responses cannot be kept in {args.db or default_path()}: {e}"
    stopper = _Stopper()
    answerer = GroupAnswerer(stopper.after_loss)

    def load() -> tuple[LoadedModel, HarmonyTokenizer]:
        tokenizer, mine = None, problem
        try:
            tokenizer = HarmonyTokenizer.from_model_dir(args.model)
        except (EngineError, OSError, ValueError) as e:
            mine = mine or f"The tokenizer in {args.model} cannot be read: {e}"
        part, problems, _ = _prepare(args, Link(group), mine)
        if part is None or part.loaded is None or tokenizer is None:
            raise _GroupCannotLoad(" ".join(problems))
        return part.loaded, tokenizer

    model_id = args.model_name or args.model.resolve().name
    runner = RunnerThread(model_id, load, max_queue=args.max_queue, answerer=answerer)
    print(f"Loading {args.model} on {group.size()} processes …", file=sys.stderr)
    try:
        runner.wait_ready()
    except _GroupCannotLoad as e:  # every process's reason, each naming its process
        print(e, file=sys.stderr)
        return 2 if problem else 1
    except Exception as e:
        print(f"The model cannot be loaded: {e}", file=sys.stderr)
        return 1
    assert store is not None
    print(where, file=sys.stderr)
    print(
        f"Serving `{model_id}` at http://{args.host}:{args.port}/v1 from {group.size()} "
        f"processes (responses in {store.path})",
        file=sys.stderr,
    )
    app = create_app(runner, api_key=key, store=store)
    config = uvicorn.Config(
        app, host=args.host, port=args.port, log_level="info", timeout_graceful_shutdown=SHUTDOWN_S
    )
    stopper.server = uvicorn.Server(config)
    failed = False
    with _signals_end_serving():
        try:
            stopper.server.run()
        except SystemExit:  # uvicorn could not start (a port in use): still release the group
            failed = True
    code = _release(answerer, runner)
    return 1 if failed and code == 0 else code


class _GroupCannotLoad(Exception):
    """A process of the group cannot load the model; the message joins every process's reason."""


class _Stopper:
    """Ends the server LOST_GRACE_S after the group was lost."""

    def __init__(self) -> None:
        self.server: uvicorn.Server | None = None

    def after_loss(self, message: str) -> None:
        log.error("%s", message)
        threading.Timer(LOST_GRACE_S, self._stop).start()

    def _stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True


def _release(answerer: GroupAnswerer, runner: RunnerThread) -> int:
    if answerer.lost is None and not answerer.release(runner, SHUTDOWN_S * 2):
        print(
            f"A request did not stop within {SHUTDOWN_S * 2} s, so the other processes were not "
            "released; they stop when this one ends.",
            file=sys.stderr,
        )
        return 1
    # The runner thread stays parked: when a thread that ran mx.compile ends, MLX's thread-local
    # destructors call into Python and abort a process that is already finalizing (seen here).
    if answerer.release_error:
        print(answerer.release_error, file=sys.stderr)
    return EXIT_GROUP_LOST if answerer.lost else 0


@contextmanager
def _signals_end_serving() -> Iterator[None]:
    """uvicorn turns SIGINT/SIGTERM into a graceful shutdown, then re-raises them to the handlers
    it found: those must not end the process before rank 0 releases the followers."""
    ends = (signal.SIGINT, signal.SIGTERM)
    previous = {sig: signal.signal(sig, lambda *_: None) for sig in ends}
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
