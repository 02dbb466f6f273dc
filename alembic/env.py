"""Alembic environment for autotune's own tables only (``autotune_*``).

Optuna's tables live in the same database and are migrated by Optuna; the include filter
keeps autogenerate from ever proposing to drop or alter them.
"""

from sqlalchemy import create_engine

from alembic import context
from autotune.store.db import VERSION_TABLE, only_autotune_tables
from autotune.store.models import Base

config = context.config
target_metadata = Base.metadata


def _configure(**kwargs) -> None:
    context.configure(
        target_metadata=target_metadata,
        version_table=VERSION_TABLE,
        include_name=only_autotune_tables,
        compare_type=True,
        render_as_batch=True,  # SQLite alters tables by copying them
        **kwargs,
    )


def run_offline() -> None:
    _configure(url=config.get_main_option("sqlalchemy.url"), literal_binds=True)
    with context.begin_transaction():
        context.run_migrations()


def run_online() -> None:
    engine = create_engine(config.get_main_option("sqlalchemy.url"))
    with engine.connect() as connection:
        _configure(connection=connection)
        with context.begin_transaction():
            context.run_migrations()
    engine.dispose()


if context.is_offline_mode():
    run_offline()
else:
    run_online()
