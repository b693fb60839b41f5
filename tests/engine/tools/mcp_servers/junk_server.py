"""A broken "MCP server": it writes lines that are not JSON-RPC on stdout.

Without arguments it prints junk and exits; with `--answer` it stays and answers every line it
reads with more junk, as a program does that was never an MCP server.
"""

from __future__ import annotations

import sys

print("Welcome to junk 1.0! This is not JSON.", flush=True)
if sys.argv[1:] == ["--answer"]:
    for line in sys.stdin:
        print(f"junk reply to {len(line)} bytes", flush=True)
