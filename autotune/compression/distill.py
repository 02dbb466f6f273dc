"""Knowledge distillation: cached teacher logits, plus intermediate layers on the layer map.

loss = alpha * T^2 * KL(softmax(teacher/T) || softmax(student/T)) + (1 - alpha) * CE(student, y)
       + hidden_weight * hidden-state MSE + attention_weight * self-attention relation KL

The T^2 factor (Hinton et al. 2015) keeps the soft-target gradients on the same scale as the
hard-label ones whatever the temperature, so alpha means the same thing at every T.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import prune

from autotune.compression.batching import TokenizedSplit, batches_per_epoch, train_batches
from autotune.compression.config import TrainingSettings
from autotune.compression.contention import wait_while_timing
from autotune.compression.fidelity import RungTraining
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
CHECKPOINT_FORMAT = 1

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


def recipe_steps(n_rows: int, settings: TrainingSettings) -> tuple[list[int], list[bool]]:
    """Optimizer steps of each stage of the recipe on ``n_rows`` rows, and whether each trains
    the classifier (as a study runs it: a teacher at hand for the layer losses)."""
    plan = stages(settings, settings.uses_teacher_layers)
    return [total_steps(n_rows, settings, s.epochs) for s in plan], [s.logits for s in plan]


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
    rung: RungTraining | None = None,
) -> list[tuple[int, float]]:
    """Train ``model`` in place; returns the loss curve as (step, mean loss) pairs.

    Without ``teacher_logits`` this is plain fine-tuning on the labels (how a teacher is made).
    With ``teacher`` and ``layer_map`` (student layer k was cut from teacher layer
    ``layer_map[k]``) and a non-zero hidden or attention weight, intermediate layers are
    distilled too. With ``rung``, only part of the run: from its checkpoint (if any) to its
    stop step, leaving a checkpoint there. The model ends on the CPU in eval mode, wherever
    it trained.
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
    stop = sum(steps) if rung is None else min(rung.stop_step, sum(steps))
    model.to(device)
    if targets.teacher is not None:
        targets.teacher.to(device)
    run = _Run(model, train, settings, targets, rng, pad_id, device, progress)
    try:
        resumed = run.resume(rung.resume_from) if rung and rung.resume_from else None
        if rung is not None:
            rung.resumed_step = resumed.step if resumed else 0
        first = resumed.stage if resumed else 0
        offset = sum(steps[:first])
        for index in range(first, len(plan)):
            stage, count = plan[index], steps[index]
            if offset >= stop:
                break
            # Sparsity ramps during the stage that shapes the predictions.
            final_sparsity = sparsity if stage.logits else 0.0
            state = resumed if resumed and index == resumed.stage else None
            finished = run.stage(stage, index, count, final_sparsity, stop - offset, state)
            if not finished:
                break
            offset += count
        if rung is not None and rung.save_to is not None:
            run.save(rung.save_to, stop, steps)
        run.bake()
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

    def state(self) -> dict[str, Any]:
        return {"done": self.done, "curve": [list(p) for p in self.curve], "running": self.running}

    def restore(self, state: dict[str, Any]) -> None:
        self.done = int(state["done"])
        self.curve = [(int(s), float(v)) for s, v in state["curve"]]
        self.running = [float(v) for v in state["running"]]


class _Batches:
    """Training batches epoch after epoch, as ``train_batches`` draws them, with a position
    that can be saved: the random state an epoch started from and how many batches of it
    were taken (a resumed run draws the same epoch and skips those)."""

    def __init__(
        self, train: TokenizedSplit, batch_size: int, rng: np.random.Generator, pad_id: int
    ):
        self.train, self.batch_size, self.rng, self.pad_id = train, batch_size, rng, pad_id
        self.epoch: Iterator[Any] | None = None
        self.epoch_start: dict[str, Any] = {}
        self.taken = 0

    def next(self) -> Any:
        while True:
            if self.epoch is None:
                self.epoch_start = self.rng.bit_generator.state
                self.epoch = train_batches(self.train, self.batch_size, self.rng, self.pad_id)
                self.taken = 0
            batch = next(self.epoch, None)
            if batch is not None:
                self.taken += 1
                return batch
            self.epoch = None

    def state(self) -> dict[str, Any]:
        if self.epoch is None:  # between epochs: the next one starts from the state now
            return {"epoch_start": self.rng.bit_generator.state, "taken": 0}
        return {"epoch_start": self.epoch_start, "taken": self.taken}

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["epoch_start"]
        self.epoch = None
        for _ in range(int(state["taken"])):
            self.next()


@dataclass(frozen=True)
class _Resumed:
    """Where a checkpoint left the run: the stage, the steps done in it and in all."""

    stage: int
    stage_step: int
    step: int
    optimizer: dict[str, Any] | None
    schedule: dict[str, Any] | None
    sparsity_now: float


class _Run:
    """One training run, stage after stage, that can stop at any step and be resumed."""

    def __init__(
        self,
        model: nn.Module,
        train: TokenizedSplit,
        settings: TrainingSettings,
        targets: _Targets,
        rng: np.random.Generator,
        pad_id: int,
        device: torch.device,
        progress: _Progress,
    ) -> None:
        self.model, self.train, self.settings, self.targets = model, train, settings, targets
        self.rng, self.pad_id, self.device, self.progress = rng, pad_id, device, progress
        # Collected before any pruning renames a weight: the optimizer's parameter order.
        self.trainable = [p for p in model.parameters() if p.requires_grad]
        self.batches: _Batches | None = None
        self.current: tuple[int, int, Any, Any, GradualMagnitudeSparsity] | None = None

    def stage(
        self,
        stage: Stage,
        index: int,
        steps: int,
        sparsity: float,
        budget: int,
        resumed: _Resumed | None,
    ) -> bool:
        """Train ``stage`` (``steps`` in all) for at most ``budget`` more steps; True if it
        finished."""
        optimizer = torch.optim.AdamW(
            self.trainable, lr=self.settings.learning_rate, weight_decay=self.settings.weight_decay
        )
        warmup = int(steps * self.settings.warmup_ratio)
        schedule = torch.optim.lr_scheduler.LambdaLR(optimizer, _linear_warmup_decay(warmup, steps))
        sparsifier = GradualMagnitudeSparsity(self.model, sparsity, steps)
        step = 0
        if resumed is not None:
            step = resumed.stage_step
            if resumed.optimizer is not None:
                optimizer.load_state_dict(resumed.optimizer)
                schedule.load_state_dict(resumed.schedule)
            sparsifier.current = resumed.sparsity_now
        else:
            self.batches = _Batches(self.train, self.settings.batch_size, self.rng, self.pad_id)
        assert self.batches is not None
        end = min(steps, step + budget)
        student_layers = list(range(len(self.targets.layer_map)))
        self.model.train()
        with captured(self.model, student_layers if stage.intermediate else []) as capture:
            while step < end:
                batch = self.batches.next()
                wait_while_timing()  # pause while another autotune process times latency
                loss = _loss(
                    self.model, batch, stage, self.targets, self.settings, capture, self.device
                )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                torch.nn.utils.clip_grad_norm_(self.trainable, 1.0)
                optimizer.step()
                schedule.step()
                step += 1
                sparsifier.step(step)
                self.progress.step(loss.item())
        self.current = (index, step, optimizer, schedule, sparsifier)
        if step < steps:
            return False
        sparsifier.finish()
        self.current = None
        return True

    def save(self, path: Path, stop: int, steps: list[int]) -> None:
        """The checkpoint at step ``stop``: mid-stage, with the stage's optimizer, schedule and
        masks; at a stage's end, the start of the next."""
        assert self.batches is not None
        if self.current is not None:
            index, stage_step, optimizer, schedule, sparsifier = self.current
            extra = {
                "optimizer": optimizer.state_dict(),
                "schedule": schedule.state_dict(),
                "sparsity_now": sparsifier.current,
                "batches": self.batches.state(),
            }
        else:  # the next stage starts afresh, drawing its batches from the random state now
            index, stage_step = _stage_at(steps, stop), 0
            fresh = {"epoch_start": self.rng.bit_generator.state, "taken": 0}
            extra = {"optimizer": None, "schedule": None, "sparsity_now": 0.0, "batches": fresh}
        torch.save(
            {
                "format": CHECKPOINT_FORMAT,
                "model": self.model.state_dict(),
                "stage": index,
                "stage_step": stage_step,
                "step": stop,
                "torch_rng": torch.get_rng_state(),
                "progress": self.progress.state(),
                **extra,
            },
            path,
        )

    def resume(self, path: Path) -> _Resumed:
        """Load a checkpoint into the model and the run; where it left off."""
        state = torch.load(path, map_location=self.device, weights_only=True)
        if state.get("format") != CHECKPOINT_FORMAT:
            raise ValueError(f"{path} is not a training checkpoint of this autotune")
        pruned = {
            k.removesuffix(".weight_orig") for k in state["model"] if k.endswith(".weight_orig")
        }
        for name, module in self.model.named_modules():
            if name in pruned:
                prune.identity(module, "weight")  # the mask's slot; the checkpoint fills it
        self.model.load_state_dict(state["model"])
        torch.set_rng_state(state["torch_rng"].cpu())
        self.progress.restore(state["progress"])
        self.batches = _Batches(self.train, self.settings.batch_size, self.rng, self.pad_id)
        self.batches.restore(state["batches"])
        return _Resumed(
            stage=int(state["stage"]),
            stage_step=int(state["stage_step"]),
            step=int(state["step"]),
            optimizer=state["optimizer"],
            schedule=state["schedule"],
            sparsity_now=float(state["sparsity_now"]),
        )

    def bake(self) -> None:
        """A run stopped mid-stage ships its weights at the sparsity reached so far."""
        if self.current is not None:
            for module in self.current[4].modules:
                if prune.is_pruned(module):
                    prune.remove(module, "weight")


def _stage_at(steps: list[int], step: int) -> int:
    """The stage that step ``step`` (counted from 0) falls in."""
    for index, end in enumerate(itertools.accumulate(steps)):
        if step < end:
            return index
    return len(steps)


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
