"""Where a command's study lives: one frozen object resolved once from options, environment
and defaults, instead of the same five parameters passed down every call."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypedDict

from autotune.errors import ConfigError
from autotune.locations import data_dir as _data_dir
from autotune.locations import models_dir as _models_dir
from autotune.store import db

ARTIFACTS_ENV = "AUTOTUNE_ARTIFACTS"
URL_SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:/")


class Where(TypedDict, total=False):
    """The location options every study command accepts besides ``storage``."""

    artifacts: str | Path | None
    data_dir: str | Path | None
    models_dir: str | Path | None
    heartbeat: int | None


@dataclass(frozen=True)
class Settings:
    """A resolved result database, artifact store, data and teacher folders, and heartbeat."""

    storage: str
    artifacts: Path
    data_dir: Path | None = None
    models_dir: Path | None = None
    heartbeat: int | None = None  # seconds; None: $AUTOTUNE_HEARTBEAT_SECONDS or 60, read
    # where heartbeats start, so that a command that reads results never trips over it

    @classmethod
    def resolve(
        cls,
        storage: str | Settings | None = None,
        artifacts: str | Path | None = None,
        data_dir: str | Path | None = None,
        models_dir: str | Path | None = None,
        heartbeat: int | None = None,
    ) -> Settings:
        """Options first, then ``AUTOTUNE_*`` variables, then defaults. A ``Settings`` passed
        as ``storage`` is returned as it is."""
        if isinstance(storage, Settings):
            return storage
        url = db.storage_url(storage)
        return cls(
            storage=url,
            artifacts=artifacts_dir(url, artifacts),
            data_dir=_absolute(_data_dir(data_dir)),
            models_dir=_absolute(_models_dir(models_dir)),
            heartbeat=heartbeat,
        )

    def artifact_store(self) -> Any:
        """Optuna's file-system artifact store, after checking that the database answers."""
        from optuna.artifacts import FileSystemArtifactStore

        # The database first: a bad URL must not leave an artifact folder behind.
        db.check_reachable(self.storage)
        self.artifacts.mkdir(parents=True, exist_ok=True)
        return FileSystemArtifactStore(str(self.artifacts))

    def redacted(self) -> str:
        return db.redact(self.storage)


def artifacts_dir(storage: str, explicit: str | Path | None = None) -> Path:
    """``--artifacts`` or ``$AUTOTUNE_ARTIFACTS``, else beside a SQLite file, else ./autotune-…"""
    value = explicit or os.environ.get(ARTIFACTS_ENV)
    if value:
        # A Path folds "s3://b" into "s3:/b": match the scheme, not the double slash.
        if URL_SCHEME.match(str(value)):
            raise ConfigError(
                f"artifacts '{value}': object-store URLs are not supported; mount the bucket "
                "and give its folder (see docs/operations.md)"
            )
        return Path(value)
    database = sqlite_path(storage)
    if database is not None:
        return database.with_name(database.name + ".artifacts")
    return Path("autotune-artifacts")


def sqlite_path(url: str) -> Path | None:
    """The file of a SQLite URL, also in its URI form (``sqlite:///file:x.db?mode=ro&uri=true``);
    None for other databases and in-memory SQLite. Parsed by hand: no SQLAlchemy import on
    the CLI's start-up path."""
    if not url.startswith("sqlite:///"):
        return None
    path, _, query = url.removeprefix("sqlite:///").partition("?")
    if "uri=true" in query.split("&"):
        path = path.removeprefix("file:")
    if path in ("", ":memory:") or "mode=memory" in query:
        return None
    return Path(path)


def _absolute(path: Path | None) -> Path | None:
    return path.resolve() if path is not None else None
