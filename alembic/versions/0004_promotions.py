"""Promotions of multi-fidelity studies: one row per configuration and rung.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-23
"""

import sqlalchemy as sa

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autotune_promotions",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("study_name", sa.String(512), nullable=False, index=True),
        sa.Column("config_id", sa.String(64), nullable=False),
        sa.Column("rung", sa.Integer(), nullable=False),
        sa.Column("source_trial", sa.Integer(), nullable=False),
        sa.Column("worker", sa.String(256), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("study_name", "config_id", "rung"),
    )


def downgrade() -> None:
    op.drop_table("autotune_promotions")
