"""Tools the model may call besides the document browser: python in a sandbox, MCP servers.

Each kind is a `ToolProvider` (base.py); the chat's tool loop asks every provider it was given
whether it answers a recipient, asks the user's approval where the provider says so, and runs the
call on the engine thread with a cancel event. Nothing here imports MLX or Qt.
"""

from engine.tools.approval import DECLINED_TEXT, ApprovalRequest, Approver, Decision
from engine.tools.base import ToolOutcome, ToolProvider, truncate_output

__all__ = [
    "DECLINED_TEXT",
    "ApprovalRequest",
    "Approver",
    "Decision",
    "ToolOutcome",
    "ToolProvider",
    "truncate_output",
]
