"""per-turn analytics facts: question vector, groundedness, pages used and cited

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-01 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "turn_insights",
        sa.Column("turn_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.Column("assistant", sa.String(length=64), nullable=False),
        sa.Column("question_hash", sa.String(length=64), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("question_vector", sa.LargeBinary(), nullable=False),
        sa.Column("groundedness", sa.Float(), nullable=True),
        sa.Column("sentences", sa.Integer(), nullable=False),
        sa.Column("context_pages", sa.JSON(), nullable=False),
        sa.Column("cited_urls", sa.JSON(), nullable=False),
        sa.Column("computed_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["turn_id"], ["turns.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("turn_id"),
    )
    with op.batch_alter_table("turn_insights", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_turn_insights_assistant"), ["assistant"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("turn_insights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_turn_insights_assistant"))
    op.drop_table("turn_insights")
