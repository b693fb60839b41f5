"""Does a model folder hold a usable model, and will it fit this Mac's memory? Qt-free.

    problem = check_model_folder(folder)     # None, or what is wrong (config, weights, tokenizer)
    fit = describe_fit(folder)                # fits, profile, max_context, headline, details

The fit comes from the engine's planner (exact bytes per component) and the machine's budget
(Metal's recommended working set on a Mac, available RAM elsewhere).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from engine import (
    MachineBudget,
    ModelArgs,
    ModelLoadError,
    checkpoint_files,
    machine_budget,
    recommend,
)

GiB = 2**30
CONFIG = "config.json"
INDEX = "model.safetensors.index.json"
SINGLE = "model.safetensors"
# The tokenizer files the engine accepts next to the weights (engine/tokenizer.py's names).
TOKENIZER_FILES = ("tokenizer.json", "o200k_base.tiktoken")
# Where engine.download keeps its partial files: with no config.json, a paused download.
DOWNLOAD_STATE = ".oss-desk"
# The planner's profile names, as a person reads them.
PROFILE_TITLES = {"full": "full precision", "16gb": "16 GB Mac", "compact": "compact"}


@dataclass(frozen=True)
class FitDescription:
    """What the memory check says about one model folder on this machine.

    `fits` is the planner's verdict: False unless a useful context fits (see engine.Verdict), and
    then the setup dialog refuses the folder unless the user chooses to load it anyway;
    `headline` is one sentence for the UI, `details` the per-component table in GiB, `message`
    the planner's verdict.
    """

    fits: bool
    profile: str
    max_context: int
    headline: str
    details: str
    message: str


def check_model_folder(model_dir: str | Path) -> str | None:
    """None when `model_dir` holds a gpt-oss config and all its weight files, else the problem.

    Bounded work whatever the folder holds (the setup dialog calls this on the UI thread):
    config.json and the index are read only if they are small regular files, and the config is
    validated before anything is computed from it.
    """
    folder = Path(model_dir).expanduser()
    if not folder.is_dir():
        return f"{folder} is not a folder."
    config = folder / CONFIG
    if not (config.exists() or config.is_symlink()):
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
    return _weights_problem(folder) or _tokenizer_problem(folder)


def _tokenizer_problem(folder: Path) -> str | None:
    if any((folder / name).is_file() for name in TOKENIZER_FILES):
        return None
    return (
        f"{folder} has no tokenizer.json: download it from the model's Hugging Face page "
        "into this folder, next to config.json."
    )


def _weights_problem(folder: Path) -> str | None:
    if not (
        (folder / INDEX).exists() or (folder / INDEX).is_symlink() or (folder / SINGLE).exists()
    ):
        return f"{folder} has a config.json but no weights (.safetensors files)."
    try:
        # The engine's reader: bounded, and it refuses pipes, devices and paths posing as shards.
        shards = checkpoint_files(folder)
    except ModelLoadError as e:
        return str(e)
    missing = [s.name for s in shards if not s.is_file()]
    if missing:
        shown = ", ".join(missing[:3]) + (
            f" and {len(missing) - 3} more" if len(missing) > 3 else ""
        )
        return (
            f"The weights in {folder} are incomplete: {shown} "
            f"{'is' if len(missing) == 1 else 'are'} missing."
        )
    return None


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
