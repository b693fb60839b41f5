"""How much memory this machine can give the model.

On a Mac the GPU may keep at most Metal's "recommended working set" resident (about 10.7 GiB of a
16 GB machine), and MLX reports it. Elsewhere MLX runs on the CPU and the limit is the RAM that is
available now.
"""

from __future__ import annotations

import os
from dataclasses import dataclass


@dataclass(frozen=True)
class MachineBudget:
    total_ram: int
    available_ram: int
    gpu_working_set: int | None  # Metal's recommended maximum, None without Metal
    reserve: int  # kept free for the app, the OS and the memory-mapped embedding rows

    @property
    def usable(self) -> int:
        limit = self.gpu_working_set if self.gpu_working_set else self.available_ram
        return max(0, limit - self.reserve)


def _meminfo() -> tuple[int, int]:
    try:
        fields = {}
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                key, value = line.split(":", 1)
                fields[key] = int(value.split()[0]) * 1024
        return fields["MemTotal"], fields.get("MemAvailable", fields["MemFree"])
    except (OSError, KeyError, ValueError):
        pages = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
        return pages, pages


def machine_budget(reserve: int = 0) -> MachineBudget:
    # Imported here: the app asks for the budget from its window (setup, attachments), which
    # must not wait for MLX to load at start-up.
    import mlx.core as mx

    info = mx.device_info()
    working_set = info.get("max_recommended_working_set_size")
    total = info.get("memory_size")
    if isinstance(total, int) and isinstance(working_set, int):
        # Apple Silicon: unified memory; what is "available" is decided by the GPU's limit.
        return MachineBudget(total, total, working_set, reserve)
    total_ram, available = _meminfo()
    return MachineBudget(total_ram, available, None, reserve)
