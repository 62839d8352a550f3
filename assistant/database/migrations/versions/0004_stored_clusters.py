"""stored question clusters, pages per turn, re-asks, and the turns' period index

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.create_index(
            "ix_turns_assistant_created_at",
            [
                "assistant",
                "created_at",
                "id",
                "conversation_id",
                "outcome",
                "top_score",
                "provider",
                "model",
                "input_tokens",
                "output_tokens",
                "cost_usd",
            ],
            unique=False,
        )
    with op.batch_alter_table("turn_insights", schema=None) as batch_op:
        batch_op.add_column(sa.Column("turn_created_at", sa.DateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("conversation_id", sa.String(length=32), nullable=False, server_default="")
        )
        batch_op.add_column(sa.Column("position", sa.Integer(), nullable=False, server_default="0"))
        batch_op.add_column(
            sa.Column("reasked", sa.Boolean(), nullable=False, server_default=sa.false())
        )
        batch_op.add_column(sa.Column("cluster", sa.Integer(), nullable=True))
        batch_op.add_column(sa.Column("clustering_version", sa.Integer(), nullable=True))
        batch_op.create_index(
            "ix_turn_insights_assistant_created_at",
            ["assistant", "turn_created_at"],
            unique=False,
        )
        batch_op.create_index(
            "ix_turn_insights_facts",
            ["turn_id", "clustering_version", "cluster", "reasked", "groundedness"],
            unique=False,
        )
        batch_op.create_index(
            batch_op.f("ix_turn_insights_conversation_id"), ["conversation_id"], unique=False
        )
    op.create_table(
        "turn_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("turn_id", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        sa.Column("in_context", sa.Boolean(), nullable=False),
        sa.Column("cited", sa.Boolean(), nullable=False),
        sa.Column("nearest_score", sa.Float(), nullable=True),
        sa.ForeignKeyConstraint(["turn_id"], ["turn_insights.turn_id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("turn_pages", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_turn_pages_turn_id"), ["turn_id"], unique=False)
    op.create_table(
        "question_clusterings",
        sa.Column("assistant", sa.String(length=64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("model_id", sa.String(length=200), nullable=False),
        sa.Column("distance_threshold", sa.Float(), nullable=False),
        sa.Column("dimension", sa.Integer(), nullable=False),
        sa.Column("clusters", sa.Integer(), nullable=False),
        sa.Column("centroids", sa.LargeBinary(), nullable=False),
        sa.Column("labels", sa.JSON(), nullable=False),
        sa.Column("clustered_turns", sa.Integer(), nullable=False),
        sa.Column("assigned_turns", sa.Integer(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("assistant"),
    )


def downgrade() -> None:
    op.drop_table("question_clusterings")
    with op.batch_alter_table("turn_pages", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_turn_pages_turn_id"))
    op.drop_table("turn_pages")
    with op.batch_alter_table("turn_insights", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_turn_insights_conversation_id"))
        batch_op.drop_index("ix_turn_insights_facts")
        batch_op.drop_index("ix_turn_insights_assistant_created_at")
        for column in (
            "clustering_version",
            "cluster",
            "reasked",
            "position",
            "conversation_id",
            "turn_created_at",
        ):
            batch_op.drop_column(column)
    with op.batch_alter_table("turns", schema=None) as batch_op:
        batch_op.drop_index("ix_turns_assistant_created_at")
