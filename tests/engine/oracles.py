"""The independent oracles: OpenAI's reference implementation (torch) and mlx-lm's gpt_oss."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import mlx.core as mx
import numpy as np

from engine.testing.reference_format import convert_to_original


def reference_logits(hf_dir: Path, token_ids: list[int], work_dir: Path) -> np.ndarray:
    """Logits from gpt_oss.torch.model.Transformer, all weights in float32."""
    try:
        import torch
        from gpt_oss.torch.model import Transformer
    except ImportError as e:  # the Makefile installs both; a missing oracle is a setup failure
        raise AssertionError(
            f"OpenAI's reference implementation is not installed ({e}); run `make test`."
        ) from e
    original = convert_to_original(hf_dir, work_dir)
    model = Transformer.from_checkpoint(str(original), device="cpu").float()
    with torch.inference_mode():
        out = model(torch.tensor(token_ids, dtype=torch.int32))
    return np.asarray(out.numpy(), dtype=np.float32)


def mlx_lm_logits(hf_dir: Path, token_ids: list[int]) -> np.ndarray:
    """Logits from mlx-lm's gpt_oss model, cast to float32 to compare exactly."""
    from mlx_lm.utils import load_model

    model: Any
    model, _ = load_model(Path(hf_dir))
    model.set_dtype(mx.float32)
    out = model(mx.array(token_ids, dtype=mx.uint32)[None])[0]
    return np.array(out.astype(mx.float32))
