"""Initial staging schema: delivered state, history, ledgers, quarantine, run lock.

Revision ID: 0001
Revises:
"""

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "delivered_principal",
        sa.Column("key", sa.String(200), primary_key=True),
        sa.Column("kind", sa.String(10), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("hash", sa.String(32), nullable=False),
        sa.Column("row", sa.Text, nullable=False),
        sa.Column("run_id", sa.String(250), nullable=False),
    )
    op.create_index("ix_delivered_principal_source", "delivered_principal", ["source_id"])
    op.create_table(
        "delivered_relation",
        sa.Column("rel_type", sa.String(40), primary_key=True),
        sa.Column("a", sa.String(200), primary_key=True),
        sa.Column("b", sa.String(200), primary_key=True),
        sa.Column("run_id", sa.String(250), nullable=False),
    )
    op.create_table(
        "change",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False),
        sa.Column("scope", sa.String(10), nullable=False),
        sa.Column("op", sa.String(10), nullable=False),
        sa.Column("kind", sa.String(40), nullable=False),
        sa.Column("a", sa.String(200), nullable=False),
        sa.Column("b", sa.String(200), nullable=False),
    )
    op.create_index("ix_change_a", "change", ["a"])
    op.create_index("ix_change_run", "change", ["run_id"])
    op.create_table(
        "run",
        sa.Column("run_id", sa.String(250), primary_key=True),
        sa.Column("dag_run_id", sa.String(250), nullable=True),
        sa.Column("kind", sa.String(20), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("ended_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("base_run", sa.String(250), nullable=True),
        sa.Column("package", sa.Text, nullable=True),
        sa.Column("counts", sa.Text, nullable=True),
        sa.Column("committed_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("message", sa.Text, nullable=True),
    )
    op.create_table(
        "delivery",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False, index=True),
        sa.Column("name", sa.String(250), nullable=False),
        sa.Column("remote_path", sa.Text, nullable=False),
        sa.Column("size", sa.Integer, nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("delivered_at", sa.String(40), nullable=False),
        sa.Column("late", sa.Boolean, nullable=False),
        sa.Column("already_there", sa.Boolean, nullable=False),
    )
    op.create_table(
        "quarantine",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("run_id", sa.String(250), nullable=False, index=True),
        sa.Column("entity", sa.String(40), nullable=False),
        sa.Column("source_id", sa.String(200), nullable=False),
        sa.Column("severity", sa.String(10), nullable=False),
        sa.Column("reason", sa.Text, nullable=False),
    )
    lock = op.create_table(
        "run_lock",
        sa.Column("name", sa.String(40), primary_key=True),
        sa.Column("run_id", sa.String(250), nullable=True),
        sa.Column("acquired_at", sa.DateTime(timezone=True), nullable=True),
    )
    op.bulk_insert(lock, [{"name": "staging", "run_id": None, "acquired_at": None}])


def downgrade() -> None:
    for table in (
        "run_lock",
        "quarantine",
        "delivery",
        "run",
        "change",
        "delivered_relation",
        "delivered_principal",
    ):
        op.drop_table(table)
