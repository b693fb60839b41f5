"""What one chat's python interpreter may use, shared by the app and the interpreter process.

Standard library only: the interpreter process imports this without the engine package.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

GiB = 1 << 30
MiB = 1 << 20
# The uid a sandbox started by root runs as, so root's private files stay unreadable.
NOBODY = 65534


@dataclass(frozen=True)
class PythonLimits:
    """Per call: wall and CPU time; per interpreter: memory, processes and threads, file size;
    and how many characters of output the model reads."""

    seconds: float = 30.0
    memory_bytes: int = GiB
    cpu_seconds: int = 30
    processes: int = 64  # processes and threads together, inside the sandbox
    file_bytes: int = 256 * MiB
    output_chars: int = 16_000

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, values: dict[str, Any]) -> PythonLimits:
        return cls(
            seconds=float(values["seconds"]),
            memory_bytes=int(values["memory_bytes"]),
            cpu_seconds=int(values["cpu_seconds"]),
            processes=int(values["processes"]),
            file_bytes=int(values["file_bytes"]),
            output_chars=int(values["output_chars"]),
        )
