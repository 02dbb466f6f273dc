"""Trials re-measured on other machines (or again on their own), without training.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-23
"""

import sqlalchemy as sa

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autotune_remeasurements",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_name", sa.String(512), nullable=False, index=True),
        sa.Column("trial_number", sa.Integer(), nullable=False),
        sa.Column(
            "hardware_id", sa.String(32), sa.ForeignKey("autotune_hardware.id"), nullable=False
        ),
        sa.Column("source_hardware_id", sa.String(32), nullable=False),
        sa.Column(
            "status",
            sa.Enum("running", "complete", "failed", name="autotune_remeasure_status"),
            nullable=False,
        ),
        sa.Column("metrics", sa.JSON(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=True),
        sa.Column("worker", sa.String(256), nullable=False),
        sa.Column("seconds", sa.Float(), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_name", "trial_number", "hardware_id"),
    )


def downgrade() -> None:
    op.drop_table("autotune_remeasurements")
    sa.Enum(name="autotune_remeasure_status").drop(op.get_bind(), checkfirst=True)
