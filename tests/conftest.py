from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

os.environ["HF_HUB_OFFLINE"] = "1"  # hub look-ups hang without a network
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from hypothesis import settings

from tests.helpers import make_dataset, make_tiny_teacher, spec_text

# Hypothesis explores new inputs on developers' machines; CI replays a fixed sequence, so a
# red CI always means a change, never a lucky draw.
settings.register_profile("ci", derandomize=True)
if os.environ.get("CI"):
    settings.load_profile("ci")

SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_DATA = SHARED / "data"
SHARED_MODELS = SHARED / "models"
ARTIFACTS = Path(__file__).resolve().parents[1] / "test-artifacts"


@pytest.fixture(scope="session", autouse=True)
def isolated_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Every test session gets its own autotune and datasets caches."""
    root = tmp_path_factory.mktemp("cache")
    os.environ["AUTOTUNE_CACHE_DIR"] = str(root / "autotune")
    os.environ["HF_DATASETS_CACHE"] = str(root / "datasets")
    return root


@pytest.fixture(scope="session")
def tiny_teacher(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_teacher(tmp_path_factory.mktemp("teacher") / "tiny-bert")


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_dataset(tmp_path_factory.mktemp("data") / "tiny")


@pytest.fixture(scope="session")
def tiny_spec(
    tmp_path_factory: pytest.TempPathFactory, tiny_teacher: Path, tiny_data: Path
) -> Path:
    path = tmp_path_factory.mktemp("spec") / "tiny.toml"
    path.write_text(spec_text(tiny_data, tiny_teacher))
    return path


@pytest.fixture(scope="session")
def tiny_context(tiny_spec: Path):
    """The tiny study prepared once: teacher, splits, logits, importance, baselines."""
    from autotune import api

    return api.prepare(tiny_spec)


PG_ADMIN_URL = os.environ.get("AUTOTUNE_TEST_PG", "postgresql://postgres@127.0.0.1:5432/test")


@pytest.fixture()
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database for one test, dropped afterwards."""
    psycopg = pytest.importorskip("psycopg")
    name = f"autotune_test_{uuid.uuid4().hex[:12]}"
    try:
        admin = psycopg.connect(PG_ADMIN_URL, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        if os.environ.get("CI"):
            raise  # CI starts a server; a missing one there is a failure, not a skip
        pytest.skip(f"no PostgreSQL server at {PG_ADMIN_URL}: {exc}")
    with admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    base = PG_ADMIN_URL.rsplit("/", 1)[0].replace("postgresql://", "postgresql+psycopg://")
    yield f"{base}/{name}"
    from autotune.store.db import engine_for

    engine_for(f"{base}/{name}").dispose()
    with psycopg.connect(PG_ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def shared_available() -> bool:
    return (SHARED_DATA / "sst2" / "train.tsv").is_file() and (
        SHARED_MODELS / "minilm-l6-sst2" / "config.json"
    ).is_file()


@dataclass(frozen=True)
class FilledDatabase:
    url: str
    artifacts: Path
    study: str = "tiny"


@pytest.fixture(scope="session")
def filled_db(
    tmp_path_factory, tiny_teacher: Path, tiny_data: Path, tiny_context
) -> FilledDatabase:
    """A real 8-trial study of the tiny teacher in a SQLite file: what the dashboard and the
    CLI's read commands are tested on."""
    import autotune

    folder = tmp_path_factory.mktemp("dashboard")
    spec = folder / "tiny.toml"
    spec.write_text(
        spec_text(
            tiny_data,
            tiny_teacher,
            search='sampler = "random"\nn_trials = 8',
            constraints="min_accuracy = 0.5",
        )
    )
    url = f"sqlite:///{folder / 'dash.db'}"
    autotune.run_study(spec, url, artifacts=folder / "artifacts")
    return FilledDatabase(url, folder / "artifacts")


@pytest.fixture(params=["sqlite", "postgresql"])
def storage(request, tmp_path: Path) -> str:
    """A fresh database URL: a SQLite file, then a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'study.db'}"
    return request.getfixturevalue("pg_url")
