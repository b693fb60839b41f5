"""Our logits against mlx-lm's gpt_oss, showing the one place they differ is mlx-lm's YaRN.

mlx-lm always rounds YaRN's correction range to whole dimensions (the checkpoint says
truncate=false). Two checkpoints with the same seed hold identical weights and differ only in that
flag, so: ours with truncation forced on must equal mlx-lm, and ours as configured must not.
"""

from __future__ import annotations

import numpy as np

from engine import load_model
from engine.testing.synthetic import tiny_config
from tests.conftest import CheckpointFactory
from tests.engine.oracles import mlx_lm_logits

TOLERANCE = 5e-5


def _rope(truncate: bool) -> dict[str, object]:
    return {"rope_scaling": dict(tiny_config()["rope_scaling"], truncate=truncate)}


def test_equal_to_mlx_lm_when_yarn_is_rounded_like_mlx_lm(
    make_checkpoint: CheckpointFactory,
) -> None:
    official = make_checkpoint(seed=5, **_rope(False))
    rounded = make_checkpoint(seed=5, **_rope(True))
    ids = [int(t) for t in np.random.default_rng(1).integers(0, 512, size=400)]

    theirs = mlx_lm_logits(official, ids)
    ours_rounded = load_model(rounded, dtype="float32").logits(ids)
    ours_official = load_model(official, dtype="float32").logits(ids)

    # everything but RoPE agrees: sinks, window, GQA, router, SwiGLU, MXFP4 experts, biases
    assert np.abs(ours_rounded - theirs).max() < TOLERANCE
    # and RoPE is where mlx-lm leaves the reference (ours matches it: test_model_vs_reference)
    diff = np.abs(ours_official - theirs).max(axis=-1)
    assert diff.max() > 100 * TOLERANCE
    # a rotation error grows with position
    assert diff[-100:].mean() > 3 * diff[:20].mean()
