"""Fused attention: ONNX Runtime's transformer optimizer rewrites each BERT self-attention
block (Q/K/V MatMuls, mask arithmetic, softmax, context MatMul) into one ``Attention`` op, the
embeddings into ``EmbedLayerNormalization``.

ORT's own session-level fusions do not match the attention of a transformers-5 export; its
offline optimizer (``onnxruntime.transformers.optimizer``, ``model_type="bert"``) does, when it
is told the model's head count and hidden size. It does not match students whose heads were
pruned (the Q/K/V width is then narrower than the hidden size): those stay unfused. A fused
graph is only kept when its logits stay within ``PARITY_TOLERANCE`` of the unfused one's on
padded rows at two lengths; whether it is *faster* is for the caller to measure, per machine.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from autotune.compression.evaluate import session
from autotune.compression.export import example_inputs
from autotune.compression.quantize import quiet_ort_logs

PARITY_TOLERANCE = 1e-4
PARITY_LENGTHS = (16, 64)


@dataclass(frozen=True)
class Fused:
    """A fused copy of a model: its file, how many ops were fused, and its largest logit
    difference from the unfused model."""

    path: Path
    attention_ops: int
    max_logit_diff: float


def fuse_attention(source: Path, target: Path, heads: int, hidden_size: int) -> Fused | None:
    """``source`` with attention fused, written to ``target``; None when nothing fused or the
    fused logits differ by more than ``PARITY_TOLERANCE``."""
    from onnxruntime.transformers.optimizer import optimize_model

    try:
        with quiet_ort_logs(), warnings.catch_warnings():
            warnings.simplefilter("ignore")
            # opt_level 0: the Python fusions only; ORT's session fusions run at load time.
            model = optimize_model(
                str(source),
                model_type="bert",
                num_heads=heads,
                hidden_size=hidden_size,
                opt_level=0,
            )
    except Exception:
        # ORT's fusions assert on shapes they do not expect (11 of 12 heads kept, for one): an
        # optional speed-up that does not apply, not a failed model.
        return None
    fused = model.get_fused_operator_statistics().get("Attention", 0)
    if not fused:
        return None
    target.parent.mkdir(parents=True, exist_ok=True)
    model.save_model_to_file(str(target))
    diff = max_logit_diff(source, target)
    if diff > PARITY_TOLERANCE:
        target.unlink()
        return None
    return Fused(target, fused, diff)


def max_logit_diff(a: Path, b: Path) -> float:
    """Largest absolute logit difference between two models on padded example batches."""
    first, second = session(a), session(b)
    names = tuple(i.name for i in first.get_inputs())
    worst = 0.0
    for length in PARITY_LENGTHS:
        feed = {k: v.numpy() for k, v in example_inputs(length, names).items()}
        out_a, out_b = first.run(None, feed)[0], second.run(None, feed)[0]
        worst = max(worst, float(np.abs(out_a - out_b).max()))
    return worst
