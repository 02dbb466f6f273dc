"""Initial autotune tables: studies, hardware, baselines, trials, front snapshots.

Revision ID: 0001
Revises:
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

NAME = sa.String(512)


def upgrade() -> None:
    op.create_table(
        "autotune_studies",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_name", NAME, nullable=False, unique=True),
        sa.Column("spec", sa.JSON(), nullable=False),
        sa.Column("spec_hash", sa.String(64), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "autotune_hardware",
        sa.Column("id", sa.String(32), primary_key=True),
        sa.Column("info", sa.JSON(), nullable=False),
    )
    op.create_table(
        "autotune_baselines",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_name", NAME, nullable=False, index=True),
        sa.Column(
            "hardware_id", sa.String(32), sa.ForeignKey("autotune_hardware.id"), nullable=False
        ),
        sa.Column("values", sa.JSON(), nullable=False),
        sa.UniqueConstraint("study_name", "hardware_id"),
    )
    op.create_table(
        "autotune_trials",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_name", NAME, nullable=False, index=True),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column(
            "status",
            sa.Enum("complete", "failed", "stopped", name="autotune_trial_status"),
            nullable=False,
        ),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("artifact_id", sa.String(128), nullable=True),
        sa.Column("artifact_sha256", sa.String(64), nullable=True),
        sa.Column(
            "hardware_id", sa.String(32), sa.ForeignKey("autotune_hardware.id"), nullable=False
        ),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_name", "trial_number"),
    )
    op.create_table(
        "autotune_front_snapshots",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_name", NAME, nullable=False, index=True),
        sa.Column(
            "hardware_id", sa.String(32), sa.ForeignKey("autotune_hardware.id"), nullable=False
        ),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("trials_seen", sa.Integer(), nullable=False),
        sa.Column("members", sa.JSON(), nullable=False),
        sa.Column("hypervolume", sa.Float(), nullable=False),
        sa.Column("reference_point", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_name", "hardware_id", "version"),
    )


def downgrade() -> None:
    for table in (
        "autotune_front_snapshots",
        "autotune_trials",
        "autotune_baselines",
        "autotune_hardware",
        "autotune_studies",
    ):
        op.drop_table(table)
    sa.Enum(name="autotune_trial_status").drop(op.get_bind(), checkfirst=True)
