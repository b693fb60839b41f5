"""A real MCP server for the tests, made with the SDK's MCPServer (v1's FastMCP).

`python demo_server.py` serves stdio; `python demo_server.py --http PORT` serves streamable HTTP
on 127.0.0.1:PORT/mcp. Its tools cover what a client meets: plain answers, a tool that hangs, one
that raises, one that kills its own process, one that blocks the server entirely, and non-text
content.
"""

from __future__ import annotations

import os
import signal
import sys
import time

import anyio
from mcp.server.mcpserver import Image, MCPServer

server = MCPServer("demo")

# A 1x1 PNG, so the image tool returns a real picture.
_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
    "1f15c4890000000d49444154789c6360f8cf00000301010018dd8db00000000049454e44ae426082"
)


@server.tool(description="Adds two numbers and returns the sum.")
def add(a: float, b: float) -> float:
    return a + b


@server.tool(name="echo-text", description="Returns the text it is given.")
def echo(text: str) -> str:
    return text


@server.tool(description="Sleeps until it is cancelled.")
async def sleep_forever() -> str:
    await anyio.sleep_forever()
    return "unreachable"


@server.tool(description="Always fails.")
def fail(reason: str = "on purpose") -> str:
    raise RuntimeError(f"this tool failed {reason}")


@server.tool(description="Kills the server's own process.")
def die() -> str:
    print("demo server: dying now", file=sys.stderr, flush=True)
    os.kill(os.getpid(), signal.SIGKILL)
    return "unreachable"


@server.tool(description="Blocks the whole server (a sleep on its event loop).")
async def freeze() -> str:
    time.sleep(3600)
    return "unreachable"


@server.tool(description="Returns a tiny PNG and a caption.", structured_output=False)
def picture() -> list[object]:
    return ["a red dot", Image(data=_PNG, format="png")]


@server.tool(description="Returns a long text.")
def long_text(n: int) -> str:
    return "".join(f"line {i}\n" for i in range(n))


if __name__ == "__main__":
    # Tests learn the process id this way (and that the configured environment arrived).
    if pid_file := os.environ.get("DEMO_PID_FILE"):
        with open(pid_file, "a") as f:
            f.write(f"{os.getpid()}\n")
    if len(sys.argv) == 3 and sys.argv[1] == "--http":
        server.run("streamable-http", host="127.0.0.1", port=int(sys.argv[2]))
    else:
        server.run()
