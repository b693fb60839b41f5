"""Does a model folder hold a usable model, and will it fit this Mac's memory? Qt-free.

    problem = check_model_folder(folder)     # None, or what is wrong, in words for the user
    fit = describe_fit(folder)                # fits, profile, max_context, headline, details

The fit comes from the engine's planner (exact bytes per component) and the machine's budget
(Metal's recommended working set on a Mac, available RAM elsewhere).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

from engine import MachineBudget, ModelArgs, ModelLoadError, machine_budget, recommend

GiB = 2**30
CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
# Where engine.download keeps its partial files: with no config.json, a paused download.
DOWNLOAD_STATE = ".oss-desk"
# The planner's profile names, as a person reads them.
PROFILE_TITLES = {"full": "full precision", "16gb": "16 GB Mac", "compact": "compact"}


@dataclass(frozen=True)
class FitDescription:
    """What the memory check says about one model folder on this machine.

    `fits` is True when at least some context fits (then `max_context` > 0); `headline` is one
    sentence for the UI, `details` the per-component table in GiB, `message` the planner's verdict.
    """

    fits: bool
    profile: str
    max_context: int
    headline: str
    details: str
    message: str


def check_model_folder(model_dir: str | Path) -> str | None:
    """None when `model_dir` holds a gpt-oss config and all its weight files, else the problem."""
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        return f"{folder} is not a folder."
    if not (folder / CONFIG).is_file():
        if (folder / DOWNLOAD_STATE).is_dir():
            return (
                f"The download into {folder} has not finished. Choose Download with this folder "
                "to resume it."
            )
        return (
            f"{folder} holds no config.json, so it is not a model folder. Choose the folder that "
            "contains config.json and the .safetensors files."
        )
    try:
        ModelArgs.from_model_dir(folder)
    except ModelLoadError as e:
        return str(e)
    return _weights_problem(folder)


def _weights_problem(folder: Path) -> str | None:
    index = folder / INDEX
    if index.is_file():
        try:
            shards = sorted(
                set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
            )
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return f"{INDEX} in {folder} is damaged. Download the model again."
        missing = [s for s in shards if not (folder / s).is_file()]
        if missing:
            return (
                f"The weights in {folder} are incomplete: {', '.join(missing)} "
                f"{'is' if len(missing) == 1 else 'are'} missing."
            )
        return None
    if (folder / SINGLE).is_file():
        return None
    return f"{folder} has a config.json but no weights (.safetensors files)."


def describe_fit(
    model_dir: str | Path, wanted_context: int = 8192, *, budget: MachineBudget | None = None
) -> FitDescription:
    """Whether the model in `model_dir` fits this machine (or `budget`), with which profile and
    how much context. Only config.json is read; check_model_folder checks the weights."""
    try:
        args = ModelArgs.from_model_dir(Path(model_dir).expanduser())
    except ModelLoadError as e:
        return FitDescription(
            False, "", 0, "This folder does not hold a gpt-oss model.", str(e), str(e)
        )
    budget = budget or machine_budget()
    # As the engine loads: bfloat16 activations on a GPU, float32 on the CPU.
    dtype = "bfloat16" if budget.gpu_working_set else "float32"
    verdict = recommend(args, budget, dtype=dtype, wanted_context=wanted_context)
    title = PROFILE_TITLES.get(verdict.profile, verdict.profile)
    if not verdict.fits:
        headline = "This model does not fit in this Mac's memory."
    elif verdict.max_context >= wanted_context:
        headline = (
            f"Fits this Mac with the {title} profile, "
            f"up to {verdict.max_context:,} tokens of context."
        )
    else:
        headline = (
            f"Fits this Mac only with a short context: up to {verdict.max_context:,} tokens "
            f"({title} profile)."
        )
    plan = verdict.plan
    details = "\n".join(
        (
            f"Memory at {plan.context:,} tokens, {title} profile, {plan.dtype}:",
            plan.table(),
            "",
            _budget_line(budget),
        )
    )
    return FitDescription(
        verdict.fits, verdict.profile, verdict.max_context, headline, details, verdict.message
    )


def _budget_line(budget: MachineBudget) -> str:
    ram = f"{budget.total_ram / GiB:.1f} GiB of RAM"
    if budget.gpu_working_set:
        source = f"Metal's working set of {budget.gpu_working_set / GiB:.1f} GiB ({ram})"
    else:
        source = f"{budget.available_ram / GiB:.1f} GiB available now ({ram}, no Metal GPU)"
    reserve = f", less {budget.reserve / GiB:.1f} GiB kept free" if budget.reserve else ""
    return f"This machine can give the model {budget.usable / GiB:.1f} GiB: {source}{reserve}."
