"""Plans, evaluation dates and stage times in the run ledger.

- ``run.evaluation_date``: the date (``YYYY-MM-DD``) the register was evaluated at;
- ``run.plan_id`` and ``run.plan``: the run's plan (its id, and as JSON the counts, what
  each guard measured and said, and the delivered state it was computed against);
- ``run.stages``: JSON, seconds and rows per stage, for the report.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.add_column(sa.Column("evaluation_date", sa.String(10), nullable=True))
        batch.add_column(sa.Column("plan_id", sa.String(40), nullable=True))
        batch.add_column(sa.Column("plan", sa.Text(), nullable=True))
        batch.add_column(sa.Column("stages", sa.Text(), nullable=True))
        batch.create_index("ix_run_plan_id", ["plan_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("run") as batch:
        batch.drop_index("ix_run_plan_id")
        batch.drop_column("stages")
        batch.drop_column("plan")
        batch.drop_column("plan_id")
        batch.drop_column("evaluation_date")
