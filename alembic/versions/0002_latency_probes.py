"""Latency probes cached per machine, so an architecture is timed once per hardware.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-21
"""

import sqlalchemy as sa

from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "autotune_latency_probes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column(
            "hardware_id", sa.String(32), sa.ForeignKey("autotune_hardware.id"), nullable=False
        ),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("median_ms", sa.Float(), nullable=False),
        sa.Column("reference_ms", sa.Float(), nullable=False),
        sa.UniqueConstraint("hardware_id", "key"),
    )


def downgrade() -> None:
    op.drop_table("autotune_latency_probes")
