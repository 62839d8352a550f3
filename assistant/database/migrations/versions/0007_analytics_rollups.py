"""hourly and daily analytics totals, conversation start and unresolved turns, model-written
cluster labels and answer grades

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-10 09:00:00.000000
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

import assistant.database.models

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

_HOUR = assistant.database.models.UTCDateTime(timezone=True)


def _counts(*names: str) -> list[sa.Column[int]]:
    return [sa.Column(name, sa.Integer(), nullable=False) for name in names]


def upgrade() -> None:
    op.create_table(
        "analytics_hours",
        sa.Column("assistant", sa.String(length=64), nullable=False),
        sa.Column("hour", _HOUR, nullable=False),
        sa.Column("hours", sa.Integer(), autoincrement=False, nullable=False),
        sa.PrimaryKeyConstraint("assistant", "hour", "hours"),
    )
    op.create_table(
        "analytics_hour_totals",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assistant", sa.String(length=64), nullable=False),
        sa.Column("hour", _HOUR, nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("provider", sa.String(length=64), nullable=False),
        sa.Column("model", sa.String(length=128), nullable=True),
        *_counts("turns", "answered", "thumbs_up", "thumbs_down", "reasked"),
        sa.Column("grounded_sum", sa.Float(), nullable=False),
        *_counts("grounded_turns", "input_tokens", "output_tokens"),
        sa.Column("cost_usd", sa.Float(), nullable=True),
        sa.Column("insights", sa.Integer(), nullable=False),
        sa.Column("graded_sum", sa.Float(), nullable=False),
        sa.Column("graded_turns", sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("analytics_hour_totals", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_hour_totals_assistant_hour", ["assistant", "hours", "hour"], unique=False
        )
    op.create_table(
        "analytics_hour_clusters",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assistant", sa.String(length=64), nullable=False),
        sa.Column("hour", _HOUR, nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        *_counts(
            "version",
            "cluster",
            "turns",
            "answered",
            "thumbs_up",
            "thumbs_down",
            "gaps",
            "gap_no_answer",
            "gap_low_score",
            "gap_thumbs_down",
            "gap_reasked",
        ),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("analytics_hour_clusters", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_hour_clusters_assistant_version_hour",
            ["assistant", "version", "hours", "hour"],
            unique=False,
        )
    op.create_table(
        "analytics_hour_pages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("assistant", sa.String(length=64), nullable=False),
        sa.Column("hour", _HOUR, nullable=False),
        sa.Column("hours", sa.Integer(), nullable=False),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("title", sa.Text(), nullable=False),
        *_counts("cited", "in_context", "cited_in_thumbs_down"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("analytics_hour_pages", schema=None) as batch_op:
        batch_op.create_index(
            "ix_analytics_hour_pages_assistant_hour", ["assistant", "hours", "hour"], unique=False
        )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("started_at", _HOUR, nullable=True))
        batch_op.add_column(
            sa.Column("unresolved_turns", sa.Integer(), server_default="0", nullable=False)
        )
    # Conversations stored before: their declined, failed and handed-off turns, 👎 turns and
    # re-asked turns, as the conversation store now counts them.
    op.execute(
        """
        UPDATE conversations SET unresolved_turns = (
            SELECT count(*) FROM turns WHERE turns.conversation_id = conversations.id
            AND (
                turns.outcome IN ('no_answer', 'error', 'handoff')
                OR EXISTS (
                    SELECT 1 FROM feedback
                    WHERE feedback.turn_id = turns.id AND feedback.rating < 0
                )
                OR EXISTS (
                    SELECT 1 FROM turn_insights
                    WHERE turn_insights.turn_id = turns.id AND turn_insights.reasked
                )
            )
        ),
        started_at = (
            SELECT min(turns.created_at) FROM turns
            WHERE turns.conversation_id = conversations.id
        )
        """
    )
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.create_index(
            "ix_conversations_assistant_started_at",
            ["assistant", "started_at", "visitor", "unresolved_turns"],
            unique=False,
        )
    with op.batch_alter_table("turn_insights", schema=None) as batch_op:
        batch_op.add_column(sa.Column("model_grade", sa.Float(), nullable=True))
        batch_op.create_index(
            "ix_turn_insights_cluster_created_at",
            ["assistant", "clustering_version", "cluster", "turn_created_at", "turn_id"],
            unique=False,
        )
    with op.batch_alter_table("question_clusterings", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("labels_model", sa.String(length=200), server_default="", nullable=False)
        )


def downgrade() -> None:
    with op.batch_alter_table("question_clusterings", schema=None) as batch_op:
        batch_op.drop_column("labels_model")
    with op.batch_alter_table("turn_insights", schema=None) as batch_op:
        batch_op.drop_index("ix_turn_insights_cluster_created_at")
        batch_op.drop_column("model_grade")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_index("ix_conversations_assistant_started_at")
        batch_op.drop_column("unresolved_turns")
        batch_op.drop_column("started_at")
    for table in ("analytics_hour_pages", "analytics_hour_clusters", "analytics_hour_totals"):
        op.drop_table(table)
    op.drop_table("analytics_hours")
