"""gpt-oss's python tool: a stateful interpreter per chat in an operating-system sandbox.

tool.py is the ToolProvider; session.py runs the interpreter process (child.py, repl.py) inside
the Linux namespaces of linux.py or the macOS profile of macos.py. The modules the interpreter
process imports (child, repl, linux, protocol, limits) use the standard library only.
"""

from engine.tools.python.limits import PythonLimits
from engine.tools.python.tool import PythonTool, sandbox_kind

__all__ = ["PythonLimits", "PythonTool", "sandbox_kind"]
