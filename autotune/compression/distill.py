"""Knowledge distillation: cached teacher logits, plus intermediate layers on the layer map.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, y)
       + hidden_weight * hidden-state MSE + attention_weight * self-attention relation KL

The T^2 factor (Hinton et al. 2015) keeps the soft-target gradients on the same scale as the
hard-label ones whatever the temperature, so alpha means the same thing at every T.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from autotune.compression.batching import TokenizedSplit, batches_per_epoch, train_batches
from autotune.compression.config import TrainingSettings
from autotune.compression.contention import wait_while_timing
from autotune.compression.layer_distill import (
    LayerCapture,
    captured,
    hidden_state_loss,
    relation_loss,
    teacher_targets,
)
from autotune.compression.sparsity import GradualMagnitudeSparsity
from autotune.errors import ConfigError

LOG_EVERY = 25  # steps per curve point on long runs
CURVE_POINTS = 50  # short runs log more often, so that even they draw a curve

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


@dataclass(frozen=True)
class Stage:
    """A run of epochs with its own optimizer and warm-up/decay schedule."""

    name: str
    epochs: float
    logits: bool  # KD on the cached teacher logits (and the labels)
    intermediate: bool  # hidden-state and relation losses on the layer map


def stages(settings: TrainingSettings, layer_distillation: bool) -> list[Stage]:
    """One combined stage, or TinyBERT's intermediate stage followed by a prediction stage."""
    if not layer_distillation:
        return [Stage("distill", settings.epochs, logits=True, intermediate=False)]
    if settings.intermediate_epochs > 0:
        return [
            Stage("intermediate", settings.intermediate_epochs, logits=False, intermediate=True),
            Stage("prediction", settings.epochs, logits=True, intermediate=False),
        ]
    return [Stage("distill", settings.epochs, logits=True, intermediate=True)]


def resolve_device(device: str) -> torch.device:
    """'auto' trains on a CUDA GPU when one is present, else on the CPU."""
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise ConfigError("training.device = 'cuda' but no CUDA GPU is available; use 'auto'")
    return torch.device(device)


def total_steps(n_rows: int, settings: TrainingSettings, epochs: float | None = None) -> int:
    per_epoch = batches_per_epoch(n_rows, settings.batch_size)
    return max(1, round(per_epoch * (settings.epochs if epochs is None else epochs)))


@dataclass
class _Targets:
    """What one training run distils from; tensors live on the training device."""

    soft: torch.Tensor | None
    teacher: nn.Module | None
    layer_map: list[int]
    temperature: float
    alpha: float


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
    teacher: nn.Module | None = None,
    layer_map: list[int] | None = None,
) -> list[tuple[int, float]]:
    """Train ``model`` in place; returns the loss curve as (step, mean loss) pairs.

    Without ``teacher_logits`` this is plain fine-tuning on the labels (how a teacher is made).
    With ``teacher`` and ``layer_map`` (student layer k was cut from teacher layer
    ``layer_map[k]``) and a non-zero hidden or attention weight, intermediate layers are
    distilled too. The model ends on the CPU in eval mode, wherever it trained.
    """
    if teacher_logits is not None and len(teacher_logits) != len(train):
        raise ValueError(f"{len(teacher_logits)} teacher logits for {len(train)} training rows")
    layered = settings.uses_teacher_layers and teacher is not None and layer_map is not None
    plan = stages(settings, layered)
    device = resolve_device(settings.device)
    targets = _Targets(
        soft=None
        if teacher_logits is None
        else torch.from_numpy(np.ascontiguousarray(teacher_logits, dtype=np.float32)).to(device),
        teacher=teacher if layered else None,
        layer_map=list(layer_map or []),
        temperature=temperature,
        alpha=alpha,
    )
    if settings.freeze_embeddings:
        # The word-embedding matrix is most of a small student's parameters; the teacher's
        # embeddings are already good, and freezing them halves the cost of a CPU step.
        model.get_input_embeddings().weight.requires_grad_(False)
    torch.manual_seed(settings.seed)
    rng = np.random.default_rng(settings.seed)
    steps = [total_steps(len(train), settings, stage.epochs) for stage in plan]
    progress = _Progress(sum(steps), on_step)
    model.to(device)
    if targets.teacher is not None:
        targets.teacher.to(device)
    try:
        for stage, count in zip(plan, steps, strict=True):
            # Sparsity ramps during the stage that shapes the predictions.
            final_sparsity = sparsity if stage.logits else 0.0
            _run_stage(
                model,
                train,
                settings,
                stage,
                count,
                targets,
                final_sparsity,
                rng,
                pad_id,
                device,
                progress,
            )
    finally:
        model.to("cpu")
        if targets.teacher is not None:
            targets.teacher.to("cpu")
        model.get_input_embeddings().weight.requires_grad_(True)
    model.eval()
    return progress.curve


class _Progress:
    def __init__(self, total: int, on_step: StepCallback | None) -> None:
        self.total = total
        self.done = 0
        self.on_step = on_step
        self.curve: list[tuple[int, float]] = []
        self.running: list[float] = []
        self.every = max(1, min(LOG_EVERY, total // CURVE_POINTS))

    def step(self, loss: float) -> None:
        self.done += 1
        self.running.append(loss)
        if self.done % self.every == 0 or self.done == self.total:
            self.curve.append((self.done, float(np.mean(self.running))))
            self.running.clear()
        if self.on_step is not None:
            self.on_step(self.done, self.total)


def _run_stage(
    model: nn.Module,
    train: TokenizedSplit,
    settings: TrainingSettings,
    stage: Stage,
    steps: int,
    targets: _Targets,
    sparsity: float,
    rng: np.random.Generator,
    pad_id: int,
    device: torch.device,
    progress: _Progress,
) -> None:
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        trainable, lr=settings.learning_rate, weight_decay=settings.weight_decay
    )
    warmup = int(steps * settings.warmup_ratio)
    schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_warmup_decay(warmup, steps))
    sparsifier = GradualMagnitudeSparsity(model, sparsity, steps)
    student_layers = list(range(len(targets.layer_map)))
    model.train()
    step = 0
    with captured(model, student_layers if stage.intermediate else []) as capture:
        while step < steps:
            for batch in train_batches(train, settings.batch_size, rng, pad_id):
                wait_while_timing()  # pause while another autotune process times latency
                loss = _loss(model, batch, stage, targets, settings, capture, device)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(trainable, 1.0)
                optimizer.step()
                schedule.step()
                step += 1
                sparsifier.step(step)
                progress.step(loss.item())
                if step >= steps:
                    break
    sparsifier.finish()


def _loss(
    model: nn.Module,
    batch,
    stage: Stage,
    targets: _Targets,
    settings: TrainingSettings,
    capture: LayerCapture,
    device: torch.device,
) -> torch.Tensor:
    inputs = batch.tensors(device)
    out = model(**inputs, output_hidden_states=stage.intermediate)
    loss = torch.zeros((), device=device)
    if stage.logits:
        soft = None if targets.soft is None else targets.soft[torch.from_numpy(batch.indices)]
        labels = torch.from_numpy(batch.labels).to(device)
        loss = loss + kd_loss(out.logits, soft, labels, targets.temperature, targets.alpha)
    if stage.intermediate:
        assert targets.teacher is not None
        loss = loss + _intermediate(out, inputs, targets, settings, capture)
    return loss


def _intermediate(
    out,
    inputs: dict[str, torch.Tensor],
    targets: _Targets,
    settings: TrainingSettings,
    capture: LayerCapture,
) -> torch.Tensor:
    relations = settings.attention_weight > 0
    hidden, teacher_capture = teacher_targets(targets.teacher, targets.layer_map, inputs, relations)
    mask = inputs["attention_mask"]
    loss = settings.hidden_weight * hidden_state_loss(list(out.hidden_states[1:]), hidden, mask)
    if teacher_capture is not None:
        layers = len(targets.layer_map)
        loss = loss + settings.attention_weight * relation_loss(
            capture, teacher_capture, layers, mask
        )
    return loss


def _linear_warmup_decay(warmup: int, steps: int) -> Callable[[int], float]:
    def factor(step: int) -> float:
        if step < warmup:
            return (step + 1) / (warmup + 1)
        return max(0.0, (steps - step) / max(1, steps - warmup))

    return factor
