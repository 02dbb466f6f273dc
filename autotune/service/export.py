"""``autotune export``: a deployable folder for one trial, with its model card."""

from __future__ import annotations

import json
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Unpack

from autotune.cache import hash_file
from autotune.compression.config import ffn_width
from autotune.errors import ArtifactError, ConfigError
from autotune.service.reads import artifact_path, open_results
from autotune.service.selection import Choice, best_config
from autotune.settings import Settings
from autotune.store import reads as stored
from autotune.store.reads import TrialSummary

STANDARD = {"", "ai.onnx"}
# What the card's snippets classify: one text, or a pair of texts.
EXAMPLE_TEXT = '"a gripping, beautifully acted film"'
EXAMPLE_PAIR = ('"The film opens on Friday."', '"It reaches cinemas this Friday."')
ORT_SNIPPET = """\
import onnxruntime as ort
from transformers import AutoConfig, AutoTokenizer

folder = "."  # this folder
tokenizer = AutoTokenizer.from_pretrained(folder)
labels = AutoConfig.from_pretrained(folder).id2label
session = ort.InferenceSession(f"{{folder}}/model.onnx", providers=["CPUExecutionProvider"])
inputs = tokenizer({texts}, truncation=True, return_tensors="np")
logits = session.run(["logits"], dict(inputs))[0]
print([labels[int(i)] for i in logits.argmax(-1)])
"""
OPTIMUM_SNIPPET = """\
from optimum.onnxruntime import ORTModelForSequenceClassification
from transformers import AutoTokenizer, pipeline

model = ORTModelForSequenceClassification.from_pretrained(".", file_name="model.onnx")
tokenizer = AutoTokenizer.from_pretrained(".")
classify = pipeline("text-classification", model=model, tokenizer=tokenizer)
print(classify({text}))
"""


def snippets(pairs: bool) -> tuple[str, str]:
    """The card's ONNX Runtime and Optimum snippets, for one text or a pair of texts."""
    if pairs:
        first, second = EXAMPLE_PAIR
        texts = f"[{first}], [{second}]"
        text = f'{{"text": {first}, "text_pair": {second}}}'
    else:
        texts, text = f"[{EXAMPLE_TEXT}]", EXAMPLE_TEXT
    return ORT_SNIPPET.format(texts=texts), OPTIMUM_SNIPPET.format(text=text)


def export_model(
    study: str, out_dir: str | Path, trial: int | None = None, **choice: Unpack[Choice]
) -> Path:
    """Write a deployable folder: ``model.onnx``, tokenizer, ``config.json``, ``metrics.json``
    and a ``README.md`` card, for trial ``trial`` or the best under the constraints
    (``choice``: the keyword arguments of :func:`best_config`)."""
    settings = open_results(choice.get("storage"), artifacts=choice.get("artifacts"))
    if trial is None:
        chosen = best_config(study, **(choice | {"storage": settings})).trial
    else:
        chosen = _complete_trial(settings, study, trial)
    source = checked_model(settings, chosen)
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(source, out / "model.onnx")
    attrs = _study_user_attrs(settings, study)
    for name, artifact_id in attrs.get("tokenizer_artifacts", {}).items():
        shutil.copyfile(settings.artifacts / artifact_id, out / name)
    max_length = stored.study_record(settings.storage, study).spec["dataset"]["max_length"]
    describe_folder(out, study, chosen, attrs, max_length)
    (out / "metrics.json").write_text(json.dumps(chosen.to_json(), indent=2) + "\n")
    return out


def describe_folder(
    out: Path, study: str, trial: TrialSummary, attrs: dict[str, Any], max_length: int
) -> None:
    """Around ``model.onnx`` and the tokenizer files already in ``out``: the tokenizer fitted
    to the study, the student's ``config.json`` and the ``README.md`` card. ``attrs`` holds
    ``teacher_config`` and ``label_names`` (a study's Optuna attributes)."""
    graph = GraphFacts.of(out / "model.onnx")
    _fit_tokenizer(out / "tokenizer_config.json", max_length, graph.inputs)
    config = student_config(study, attrs, trial, max_length, graph)
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    (out / "README.md").write_text(model_card(study, trial, config, graph), encoding="utf-8")


def student_config(
    study: str, attrs: dict[str, Any], trial: TrialSummary, max_length: int, graph: GraphFacts
) -> dict[str, Any]:
    """The teacher's ``config.json`` with the student's own shape and the class names, so that
    ``AutoConfig`` describes the model in the folder."""
    teacher = attrs.get("teacher_config", {})
    compression = trial.compression
    # to_diff_dict() leaves out values equal to BERT's defaults.
    hidden = teacher.get("hidden_size", 768)
    head_dim = hidden // teacher.get("num_attention_heads", 12)
    config = {
        **teacher,
        "num_hidden_layers": compression.layers,
        "num_attention_heads": compression.heads,
        "head_dim": head_dim,  # pruned heads keep the teacher's size: heads x head_dim != hidden
        "intermediate_size": ffn_width(
            teacher.get("intermediate_size", 3072), compression.ffn_fraction
        ),
    }
    if names := attrs.get("label_names"):
        config["id2label"] = {str(i): name for i, name in enumerate(names)}
        config["label2id"] = {name: i for i, name in enumerate(names)}
    config["autotune"] = {
        "study": study,
        "trial": trial.number if trial.number >= 0 else None,  # None: from `trial run`
        "compression": trial.config,
        "max_length": max_length,
        "inputs": list(graph.inputs),
        "outputs": ["logits"],
        "ort_only_operators": list(graph.ort_only_operators),
    }
    return config


def _fit_tokenizer(path: Path, max_length: int, inputs: tuple[str, ...]) -> None:
    """The tokenizer as the study used it: its length, and only the inputs the graph takes
    (a BERT tokenizer also returns ``token_type_ids``, which only a graph of sentence pairs
    takes)."""
    if not path.is_file():
        return
    settings = json.loads(path.read_text(encoding="utf-8"))
    settings["model_max_length"] = max_length
    settings["model_input_names"] = list(inputs)
    path.write_text(json.dumps(settings, indent=2) + "\n", encoding="utf-8")


@dataclass(frozen=True)
class GraphFacts:
    """What the card and ``config.json`` say of the exported graph, read from the graph."""

    inputs: tuple[str, ...]
    # ``domain:op`` of every operator outside the ONNX standard (ONNX Runtime contrib ops,
    # such as dynamic quantization's), sorted: the graph runs in ONNX Runtime only if any.
    ort_only_operators: tuple[str, ...]

    @property
    def pairs(self) -> bool:
        return "token_type_ids" in self.inputs

    @classmethod
    def of(cls, model: Path) -> GraphFacts:
        import onnx

        graph = onnx.load(str(model), load_external_data=False).graph
        operators = {f"{n.domain}:{n.op_type}" for n in graph.node if n.domain not in STANDARD}
        return cls(tuple(i.name for i in graph.input), tuple(sorted(operators)))


def _complete_trial(settings: Settings, study: str, number: int) -> TrialSummary:
    chosen = next((t for t in stored.trials(settings.storage, study) if t.number == number), None)
    if chosen is None or chosen.status != "complete":
        state = "does not exist" if chosen is None else f"is {chosen.status}"
        raise ConfigError(f"trial {number} of '{study}' {state}; only complete trials export")
    return chosen


def checked_model(settings: Settings, trial: TrialSummary) -> Path:
    """The trial's model file, refused unless present and matching its stored sha256."""
    source = artifact_path(settings, trial)
    if source is None or not source.is_file():
        raise ArtifactError(
            f"model of trial {trial.number} is missing from the artifact store "
            f"({settings.artifacts})"
        )
    if hash_file(source) != trial.artifact_sha256:
        raise ArtifactError(f"model of trial {trial.number} does not match its stored sha256")
    return source


def _study_user_attrs(settings: Settings, study: str) -> dict:
    import optuna

    return optuna.load_study(study_name=study, storage=settings.storage).user_attrs


def model_card(study: str, trial: TrialSummary, config: dict[str, Any], graph: GraphFacts) -> str:
    m, c = trial.measured, trial.compression
    heading = f"trial {trial.number}" if trial.number >= 0 else "trial run"
    named = ", ".join(config.get("id2label", {}).values())
    classes = named or f"{config.get('num_labels', 2)}, unnamed"
    runtime = (
        f"The graph uses ONNX Runtime operators ({', '.join(graph.ort_only_operators)}): run "
        "it in ONNX Runtime, not in other ONNX engines."
        if graph.ort_only_operators
        else "The graph uses standard ONNX operators only."
    )
    task = (
        "pairs of texts (inputs: input_ids, attention_mask, token_type_ids)"
        if graph.pairs
        else "single texts"
    )
    ort_snippet, optimum_snippet = snippets(graph.pairs)
    return (
        f"# {study} {heading}: {c.label()}\n\n"
        f"| metric | value |\n|---|---|\n"
        f"| accuracy | {m.accuracy:.4f} |\n| macro-F1 | {m.macro_f1:.4f} |\n"
        f"| latency (ms, batch 1) | {m.latency_ms:.2f} |\n"
        f"| speedup vs teacher PyTorch FP32 | {m.speedup_vs_teacher_pytorch:.2f}x |\n"
        f"| speedup vs teacher ORT FP32 | {m.speedup_vs_teacher_ort:.2f}x |\n"
        f"| size (MB) | {m.size_mb:.1f} |\n| weight sparsity | {m.sparsity:.1%} |\n"
        f"| hardware | {trial.hardware_id} |\n\n"
        f"Student: {config['num_hidden_layers']} layers, {config['num_attention_heads']} heads "
        f"of {config['head_dim']}, FFN {config['intermediate_size']}; classes: {classes}; "
        f"classifies {task}; trained and measured at {config['autotune']['max_length']} "
        "tokens.\n\n"
        f"{runtime}\n\n"
        "## Run it with ONNX Runtime\n\n```python\n"
        f"{ort_snippet}```\n\n"
        "## Or with Optimum and a transformers pipeline\n\n"
        "optimum-onnx needs transformers 4.x: install it in its own environment.\n\n```python\n"
        f"{optimum_snippet}```\n"
    )
