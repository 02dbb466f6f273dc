"""Alembic migrations of autotune's tables, beside Optuna's, on SQLite and PostgreSQL."""

from pathlib import Path

import optuna
import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect, text

from autotune.errors import SchemaOutOfDateError, StorageError
from autotune.store import db
from autotune.store.models import Base

AUTOTUNE_TABLES = {
    "autotune_studies",
    "autotune_hardware",
    "autotune_baselines",
    "autotune_trials",
    "autotune_front_snapshots",
    "autotune_latency_probes",
    "autotune_alembic_version",
}


@pytest.fixture(params=["sqlite", "postgresql"])
def url(request, tmp_path: Path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'm.db'}"
    return request.getfixturevalue("pg_url")


def _tables(url: str) -> set[str]:
    return set(inspect(db.engine_for(url)).get_table_names())


def test_empty_database_upgrades_to_head(url: str) -> None:
    assert db.upgrade(url) == db.head_revision()
    tables = _tables(url)
    assert tables >= AUTOTUNE_TABLES
    assert {"studies", "trials", "version_info"} <= tables  # Optuna's, upgraded first
    db.ensure_current(url)


def test_models_and_migrations_do_not_differ(url: str) -> None:
    db.upgrade(url)
    with db.engine_for(url).connect() as connection:
        context = MigrationContext.configure(
            connection,
            opts={
                "include_name": db.only_autotune_tables,
                "version_table": db.VERSION_TABLE,
                "compare_type": True,
            },
        )
        assert compare_metadata(context, Base.metadata) == []


def test_optuna_first_then_autotune(url: str) -> None:
    optuna.create_study(study_name="plain", storage=url)
    db.upgrade(url)
    assert optuna.load_study(study_name="plain", storage=url).study_name == "plain"
    db.ensure_current(url)


def test_autotune_first_then_optuna(url: str) -> None:
    db.upgrade(url, optuna_first=False)
    study = optuna.create_study(study_name="plain", storage=url)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert _tables(url) >= AUTOTUNE_TABLES
    db.ensure_current(url)


def test_database_from_first_revision_upgrades(url: str) -> None:
    db.upgrade(url, revision="0001")
    with db.engine_for(url).begin() as connection:
        connection.execute(text("INSERT INTO autotune_hardware (id, info) VALUES ('hw1', '{}')"))
    with pytest.raises(SchemaOutOfDateError, match=r"revision 0001.*run: autotune db upgrade"):
        db.ensure_current(url)
    assert db.upgrade(url) == db.head_revision()
    with db.engine_for(url).connect() as connection:
        assert connection.execute(text("SELECT id FROM autotune_hardware")).scalar() == "hw1"
    db.ensure_current(url)


def test_enum_types_are_prefixed(pg_url: str) -> None:
    db.upgrade(pg_url)
    with db.engine_for(pg_url).connect() as connection:
        names = (
            connection.execute(text("SELECT typname FROM pg_type WHERE typtype = 'e'"))
            .scalars()
            .all()
        )
    optuna_enums = {"studydirection", "trialstate", "trialvaluetype", "trialintermediatevaluetype"}
    ours = set(names) - optuna_enums
    assert "autotune_trial_status" in ours
    assert all(name.startswith("autotune_") for name in ours)


def test_no_foreign_keys_into_optuna_tables(url: str) -> None:
    db.upgrade(url)
    inspector = inspect(db.engine_for(url))
    for table in AUTOTUNE_TABLES:
        for key in inspector.get_foreign_keys(table):
            assert key["referred_table"].startswith("autotune_")


def test_unreachable_database_url() -> None:
    with pytest.raises(
        StorageError, match="cannot reach database 'postgresql\\+psycopg://nobody@127.0.0.1:1/x'"
    ):
        db.ensure_current("postgresql+psycopg://nobody@127.0.0.1:1/x")


def test_invalid_storage_url() -> None:
    with pytest.raises(StorageError, match="invalid storage URL 'nosuchdb://x'"):
        db.ensure_current("nosuchdb://x")


def test_password_is_redacted() -> None:
    assert "secret" not in db.redact("postgresql+psycopg://me:secret@host/db")
    assert db.storage_url("postgresql://me@host/db") == "postgresql+psycopg://me@host/db"


def test_head_revision_constant_matches_the_migrations() -> None:
    # ensure_current compares with the constant so that reading results never imports Alembic.
    assert db.head_revision() == db.HEAD_REVISION
