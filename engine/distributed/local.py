"""N processes of one program on this machine, joined by MLX's ring backend over 127.0.0.1.

What the tests and benchmarks/distributed.py use; the same `mlx.launch` with a hostfile of the
Macs' addresses runs the group across machines. `spawn_local` starts the ranks without
mlx.launch, which ends the whole group (SIGTERM) as soon as one rank exits: tests of a lost rank
use it to see what rank 0 itself reports.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from collections.abc import Sequence
from contextlib import ExitStack
from pathlib import Path

_SOURCE_ROOT = Path(__file__).resolve().parents[2]
_FIRST_PORT = 20000
_LAST_PORT = 60000


def free_ports(count: int, start: int = _FIRST_PORT) -> int:
    """The first of `count` consecutive loopback ports that are free right now."""
    port = start
    while port + count <= _LAST_PORT:
        with ExitStack() as held:
            try:
                for p in range(port, port + count):
                    s = held.enter_context(socket.socket())
                    s.bind(("127.0.0.1", p))
                return port
            except OSError:
                port = p + 1
    raise RuntimeError(f"no {count} consecutive free ports between {start} and {_LAST_PORT}")


def launch_command(processes: int, module_args: Sequence[str], port: int) -> list[str]:
    """mlx.launch running `python -m <module_args>` in `processes` local ring ranks."""
    return [
        sys.executable,
        "-c",
        "import sys; from mlx._distributed_utils.launch import main; sys.exit(main())",
        "-n",
        str(processes),
        "--backend",
        "ring",
        "--starting-port",
        str(port),
        "--python",
        sys.executable,
        "--cwd",
        str(_SOURCE_ROOT),  # where `python -m engine...` finds the engine
        "--",
        "-m",
        *module_args,
    ]


def run_local(
    processes: int, module_args: Sequence[str], timeout: float
) -> subprocess.CompletedProcess[str]:
    """Runs the group to its end (or kills it after `timeout` seconds); output captured."""
    # A random-ish start spreads concurrent runs (several test sessions) over the port range.
    start = _FIRST_PORT + (hash((processes, tuple(module_args))) % 20000)
    if processes == 1:  # a group of one: no launcher, no ring
        command = [sys.executable, "-m", *module_args]
    else:
        command = launch_command(processes, module_args, free_ports(processes, start))
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, check=False)


def spawn_local(
    processes: int, module_args: Sequence[str], folder: Path
) -> list[subprocess.Popen[str]]:
    """Starts the ranks as mlx.launch would (a ring hostfile, MLX_RANK), each one on its own:
    ranks that outlive another are not ended for it. Output goes to folder/rank<r>.log."""
    start = _FIRST_PORT + (os.getpid() % 20000)
    port = free_ports(processes, start)
    hostfile = folder / "hosts.json"
    hostfile.write_text(json.dumps([[f"127.0.0.1:{port + r}"] for r in range(processes)]))
    ranks = []
    for r in range(processes):
        env = os.environ | {"MLX_HOSTFILE": str(hostfile), "MLX_RANK": str(r)}
        log = open(folder / f"rank{r}.log", "w")  # noqa: SIM115 - the child owns it from here
        ranks.append(
            subprocess.Popen(
                [sys.executable, "-m", *module_args],
                cwd=_SOURCE_ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
                text=True,
            )
        )
        log.close()
    return ranks
