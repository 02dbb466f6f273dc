"""The latency most traffic sees: validation sentences at their own lengths, batch 1, and a
study that ranks by it (``latency.optimise``)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import optuna
import pytest

import autotune
from autotune.compression.batching import TokenizedSplit
from autotune.compression.latency import profile_feeds
from autotune.search import pareto
from autotune.store import measured
from tests.helpers import spec_text


def test_profile_feeds_are_real_unpadded_sentences() -> None:
    rows = [np.arange(1, n + 1, dtype=np.int32) for n in (3, 7, 5, 9)]
    types = [np.array([0] * (n - 2) + [1, 1], dtype=np.int8) for n in (3, 7, 5, 9)]
    split = TokenizedSplit.from_rows(rows, np.zeros(4, dtype=np.int64), types)
    feeds = profile_feeds(split, 3)
    assert len(feeds) == 3
    lengths = sorted(f["input_ids"].shape[1] for f in feeds)
    assert set(lengths) <= {3, 5, 7, 9} and len(set(lengths)) == 3
    for feed in feeds:
        assert feed["input_ids"].shape[0] == 1 and feed["attention_mask"].all()
        assert set(feed) == {"input_ids", "attention_mask", "token_type_ids"}
    assert len(profile_feeds(split, 100)) == 4  # never more than the split has


def test_a_study_ranks_by_the_data_length_p90(
    tmp_path: Path, tiny_teacher: Path, tiny_data: Path, tiny_context
) -> None:
    url = f"sqlite:///{tmp_path / 's.db'}"
    spec = tmp_path / "tiny.toml"
    latency = (
        "threads = 1\nwarmup = 2\nruns = 20\nprecision = 0\nsequence_length = 16\n"
        'optimise = "data_p90"'
    )
    spec.write_text(
        spec_text(
            tiny_data, tiny_teacher, latency=latency, search='sampler = "random"\nn_trials = 6'
        )
    )
    autotune.run_study(spec, url, artifacts=tmp_path / "a")
    [hardware_id] = autotune.api.hardware_info("tiny", url)
    view = measured.machine_view(url, "tiny", hardware_id)
    done = measured.trusted(view.trials)
    assert done
    for t in done:
        m = t.metrics
        assert m["latency_data_p90_ms"] > 0 and m["latency_data_mean_ms"] > 0
        assert m["latency_data_reference_ms"] > 0
    # The front is the non-dominated set in (accuracy, data p90), not in the fixed length.
    points = [
        pareto.Point(t.number, (t.metrics["accuracy"], t.metrics["latency_data_p90_ms"]))
        for t in done
    ]
    expected = pareto.compute_front(points, ["accuracy", "latency"], [0.0, 1e9]).members
    front = autotune.pareto_front("tiny", url)
    assert sorted(m.number for m in front.members) == expected
    # The sampler saw the same figure, on one fixed scale.
    study = optuna.load_study(study_name="tiny", storage=url)
    by_number = {t.number: t for t in done}
    scales = [
        t.values[1]
        / (by_number[t.number].metrics["latency_data_p90_ms"]
           / by_number[t.number].metrics["latency_data_reference_ms"])
        for t in study.trials
        if t.number in by_number
    ]  # fmt: skip
    assert max(scales) == pytest.approx(min(scales), rel=1e-6)
