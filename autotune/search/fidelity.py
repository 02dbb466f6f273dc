"""Multi-fidelity search on Optuna (asynchronous MO-ASHA, Schmucker et al. 2021).

Every rung result is an ordinary Optuna trial: the configuration's parameters plus ``rung``.
Sampled trials get ``rung = 0`` (a :class:`~optuna.samplers.PartialFixedSampler` around the
study's sampler); a promotion is the same parameters enqueued with ``rung = k + 1`` and, in
its user attributes, the lower-rung trial and the checkpoint artifact it resumes from. Plain
Optuna and optuna-dashboard read such a study as any other, and the samplers learn from
every rung.

Promotion is asynchronous: whenever a trial finishes, a rung holding n results promotes its
best n // eta (:func:`autotune.search.promotion.promotable`) that are not promoted yet. The
claim is a row with a unique (study, configuration, rung) key, taken before the trial is
enqueued, so two workers never promote one configuration twice; a claim whose worker died
before enqueueing is taken over once it is :data:`STALE_CLAIM_SECONDS` old.
"""

from __future__ import annotations

import logging
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from autotune.cache import hash_json
from autotune.compression.config import CompressionConfig
from autotune.compression.fidelity import RungPlan, RungTraining
from autotune.search.promotion import promotable
from autotune.store import promotions

RUNG = "rung"
CONFIG_ID = "config_id"
RESUME_TRIAL = "resume_trial"
RESUME_ARTIFACT = "resume_artifact"
CHECKPOINT_ARTIFACT = "checkpoint_artifact"
PLAN_ATTR = "fidelity"  # the study's rungs, in Optuna's study user attributes
STALE_CLAIM_SECONDS = 60.0
log = logging.getLogger("autotune.fidelity")


def config_id(config: CompressionConfig) -> str:
    """One configuration across its rungs."""
    return hash_json(["config", config.to_dict()])[:16]


def rung_of(trial: FrozenTrial) -> int:
    """A trial's rung; an enqueued promotion's before it runs (its parameters are set only
    once it suggests them); 0 for a study without rungs."""
    return int(trial.params.get(RUNG, trial.user_attrs.get(RUNG, 0)))


def sampled_at_rung_zero(sampler: optuna.samplers.BaseSampler) -> optuna.samplers.BaseSampler:
    """New configurations start at the lowest rung; enqueued promotions keep their own."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        return optuna.samplers.PartialFixedSampler({RUNG: 0}, sampler)


def rung_training(
    trial: optuna.Trial, plan: RungPlan, config: CompressionConfig, out: Path, artifacts: Any
) -> RungTraining:
    """The trial's rung and what it trains: from its lower rung's checkpoint when it is a
    promotion, up to its rung's step, leaving a checkpoint unless it is the top rung."""
    index = trial.suggest_int(RUNG, 0, plan.top)
    trial.set_user_attr(RUNG, index)
    trial.set_user_attr(CONFIG_ID, config_id(config))
    out.mkdir(parents=True, exist_ok=True)
    resume = None
    artifact = trial.user_attrs.get(RESUME_ARTIFACT)
    if index > 0 and artifact:
        resume = _download(artifacts, artifact, out / "resume.pt")
    save = out / "checkpoint.pt" if index < plan.top else None
    return RungTraining(plan.steps[index], resume, save, index, index == plan.top)


def _download(artifacts: Any, artifact: str, path: Path) -> Path | None:
    """The lower rung's checkpoint; None when it is gone (released after its promotion
    completed, then retried): the rung then trains from the start, to the same step."""
    try:
        optuna.artifacts.download_artifact(
            artifact_store=artifacts, file_path=str(path), artifact_id=artifact
        )
    except Exception as exc:  # the store raises its own errors for missing artifacts
        log.warning(
            "checkpoint %s unavailable (%s); training this rung from the start", artifact, exc
        )
        return None
    return path


def release_checkpoint(trial: optuna.Trial, artifacts: Any) -> None:
    """A promotion that trained past its lower rung no longer needs that rung's checkpoint:
    checkpoints hold the optimizer's state too, about twice a model's size each."""
    _remove(artifacts, trial.user_attrs.get(RESUME_ARTIFACT))


def release_all_checkpoints(study: optuna.Study, artifacts: Any) -> int:
    """A finished study (nothing waiting or running) resumes nothing: remove every checkpoint
    left, those of configurations never promoted. A study extended later trains such a
    configuration's promotion from the start (``rung_training``). How many were removed."""
    trials = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
    return sum(_remove(artifacts, t.user_attrs.get(CHECKPOINT_ARTIFACT)) for t in trials)


def _remove(artifacts: Any, artifact: str | None) -> bool:
    """Remove a checkpoint artifact if it is still there (another worker, or an earlier
    release, may have removed it)."""
    if not artifact:
        return False
    try:
        artifacts.remove(artifact)
    except Exception:  # the store raises its own errors for missing artifacts
        return False
    return True


def keep_checkpoint(trial: optuna.Trial, rung: RungTraining, artifacts: Any) -> None:
    """Store a lower rung's checkpoint with its trial, for the promotion that may come."""
    if rung.save_to is not None and rung.save_to.exists():
        artifact = optuna.artifacts.upload_artifact(
            artifact_store=artifacts, file_path=str(rung.save_to), study_or_trial=trial
        )
        trial.set_user_attr(CHECKPOINT_ARTIFACT, artifact)


class Promoter:
    """Optuna callback: after a trial finishes, promote what the rungs allow."""

    def __init__(
        self, url: str, study_name: str, plan: RungPlan, promote_one_in: int, worker: str
    ) -> None:
        # promote_one_in: the spec's `promote`, or eta (``FidelitySpec.promote_one_in``)
        self.url, self.study_name, self.plan = url, study_name, plan
        self.one_in = promote_one_in
        self.worker = worker

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        if trial.state == TrialState.COMPLETE and rung_of(trial) < self.plan.top:
            self.promote(study)

    def promote(self, study: optuna.Study) -> int:
        """Enqueue every promotion due now; how many this worker enqueued."""
        everything = study.get_trials(deepcopy=False)
        present = {(t.user_attrs.get(CONFIG_ID), rung_of(t)) for t in everything}
        by_number = {t.number: t for t in everything}
        enqueued = self._take_over_stale(study, present, by_number)
        complete = [t for t in everything if t.state == TrialState.COMPLETE]
        directions = study.directions
        for rung in range(self.plan.top - 1, -1, -1):
            results = rung_results(complete, rung)
            if len(results) < self.one_in:
                continue
            for index in promotable(losses(results, directions), self.one_in):
                source = results[index]
                key = (source.user_attrs[CONFIG_ID], rung + 1)
                if key in present:
                    continue
                if promotions.claim(self.url, self.study_name, *key, source.number, self.worker):
                    enqueue_promotion(study, source, rung + 1)
                    present.add(key)
                    enqueued += 1
        return enqueued

    def _take_over_stale(
        self, study: optuna.Study, present: set[tuple[Any, int]], by_number: dict[int, FrozenTrial]
    ) -> int:
        taken = 0
        for claim in promotions.promotions(self.url, self.study_name):
            key = (claim.config_id, claim.rung)
            if key in present or not promotions.is_stale(claim, STALE_CLAIM_SECONDS):
                continue
            source = by_number.get(claim.source_trial)
            if source is None or not promotions.take_over(
                self.url, self.study_name, claim, self.worker
            ):
                continue
            enqueue_promotion(study, source, claim.rung)
            present.add(key)
            taken += 1
        return taken


def rung_results(complete: list[FrozenTrial], rung: int) -> list[FrozenTrial]:
    """A rung's complete results that can be promoted (they left a checkpoint), one per
    configuration (its first)."""
    seen: set[str] = set()
    out = []
    for trial in complete:
        cid = trial.user_attrs.get(CONFIG_ID)
        if rung_of(trial) != rung or cid is None or cid in seen:
            continue
        if CHECKPOINT_ARTIFACT in trial.user_attrs and trial.values is not None:
            seen.add(cid)
            out.append(trial)
    return out


def losses(trials: list[FrozenTrial], directions: list[Any]) -> np.ndarray:
    """The trials' objective values as losses (maximised objectives negated)."""
    signs = [-1.0 if d == optuna.study.StudyDirection.MAXIMIZE else 1.0 for d in directions]
    return np.array([[s * v for s, v in zip(signs, t.values, strict=True)] for t in trials])


def enqueue_promotion(study: optuna.Study, source: FrozenTrial, rung: int) -> None:
    study.enqueue_trial(
        {**source.params, RUNG: rung},
        user_attrs={
            CONFIG_ID: source.user_attrs[CONFIG_ID],
            RUNG: rung,
            RESUME_TRIAL: source.number,
            RESUME_ARTIFACT: source.user_attrs[CHECKPOINT_ARTIFACT],
        },
    )
