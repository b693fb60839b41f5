"""Memory: precision profiles, the planner that predicts every byte, and the machine's budget."""

from engine.memory.budget import MachineBudget, machine_budget
from engine.memory.planner import MemoryPlan, Verdict, plan_memory, recommend
from engine.memory.profiles import PROFILES, PrecisionProfile, get_profile

__all__ = [
    "PROFILES",
    "MachineBudget",
    "MemoryPlan",
    "PrecisionProfile",
    "Verdict",
    "get_profile",
    "machine_budget",
    "plan_memory",
    "recommend",
]
