"""Knowledge distillation from cached teacher logits (no teacher forward per step).

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, y)

The T^2 factor (Hinton et al. 2015) keeps the soft-target gradients on the same scale as the
hard-label ones whatever the temperature, so alpha means the same thing at every T.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autotune.compression.batching import TokenizedSplit, batches_per_epoch, train_batches
from autotune.compression.config import TrainingSettings
from autotune.compression.sparsity import GradualMagnitudeSparsity

LOG_EVERY = 25

StepCallback = Callable[[int, int], None]


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor | None,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    hard = F.cross_entropy(student_logits, labels)
    if teacher_logits is None or alpha == 0:
        return hard
    soft = F.kl_div(
        F.log_softmax(student_logits / temperature, dim=-1),
        F.softmax(teacher_logits / temperature, dim=-1),
        reduction="batchmean",
    ) * (temperature**2)
    return alpha * soft + (1 - alpha) * hard


def total_steps(n_rows: int, settings: TrainingSettings) -> int:
    return max(1, round(batches_per_epoch(n_rows, settings.batch_size) * settings.epochs))


def distill(
    model: nn.Module,
    train: TokenizedSplit,
    settings: TrainingSettings,
    *,
    teacher_logits: np.ndarray | None = None,
    temperature: float = 1.0,
    alpha: float = 0.0,
    sparsity: float = 0.0,
    pad_id: int = 0,
    on_step: StepCallback | None = None,
) -> list[tuple[int, float]]:
    """Train ``model`` in place; returns the loss curve as (step, mean loss) pairs.

    Without ``teacher_logits`` this is plain fine-tuning on the labels (how a teacher is made).
    """
    if teacher_logits is not None and len(teacher_logits) != len(train):
        raise ValueError(f"{len(teacher_logits)} teacher logits for {len(train)} training rows")
    steps = total_steps(len(train), settings)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    warmup = int(steps * settings.warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_warmup_decay(warmup, steps))
    sparsifier = GradualMagnitudeSparsity(model, sparsity, steps)
    rng = np.random.default_rng(settings.seed)
    torch.manual_seed(settings.seed)
    soft_targets = (
        None
        if teacher_logits is None
        else torch.from_numpy(np.ascontiguousarray(teacher_logits, dtype=np.float32))
    )
    curve: list[tuple[int, float]] = []
    running: list[float] = []
    model.train()
    step = 0
    while step < steps:
        for batch in train_batches(train, settings.batch_size, rng, pad_id):
            logits = model(
                input_ids=torch.from_numpy(batch.input_ids),
                attention_mask=torch.from_numpy(batch.attention_mask),
            ).logits
            loss = kd_loss(
                logits,
                None if soft_targets is None else soft_targets[batch.indices],
                torch.from_numpy(batch.labels),
                temperature,
                alpha,
            )
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            schedule.step()
            step += 1
            sparsifier.step(step)
            running.append(loss.item())
            if step % LOG_EVERY == 0 or step == steps:
                curve.append((step, float(np.mean(running))))
                running.clear()
            if on_step is not None:
                on_step(step, steps)
            if step >= steps:
                break
    sparsifier.finish()
    model.eval()
    return curve


def _linear_warmup_decay(warmup: int, steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor
