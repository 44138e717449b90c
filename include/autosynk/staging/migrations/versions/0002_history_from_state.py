"""History partly from the delivered state: delivered_principal.added_run, change.since_run.

From this revision a commit writes history rows only for what the delivered state cannot
show (changes, deletes, removes, forgets); adds are read from the delivered tables' runs.
Existing rows get ``added_run = run_id``: the older history rows still record their adds.

The downgrade writes the add rows revision 0001's code expects (an ``upsert`` / ``add``
for every add this revision left to the delivered state or to ``since_run``, ``change``
rows as ``upsert``) before dropping the columns, so the history stays complete; the
restored rows come after the older ones in id order.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # batch mode: SQLite cannot make a column NOT NULL in place (the table is copied)
    with op.batch_alter_table("delivered_principal") as batch:
        batch.add_column(sa.Column("added_run", sa.String(250), nullable=True))
    op.execute("UPDATE delivered_principal SET added_run = run_id")
    with op.batch_alter_table("delivered_principal") as batch:
        batch.alter_column("added_run", existing_type=sa.String(250), nullable=False)
    with op.batch_alter_table("change") as batch:
        batch.add_column(sa.Column("since_run", sa.String(250), nullable=True))


#: an add already recorded by a row of the old kind
_RECORDED = """
    NOT EXISTS (SELECT 1 FROM change o
                WHERE o.run_id = {run} AND o.scope = {scope} AND o.op IN ('upsert', 'add')
                  AND o.a = {a} AND o.b = {b})
"""


def downgrade() -> None:
    op.execute(
        "INSERT INTO change (run_id, scope, op, kind, a, b) "
        "SELECT DISTINCT c.since_run, c.scope, "
        "CASE WHEN c.scope = 'principal' THEN 'upsert' ELSE 'add' END, c.kind, c.a, c.b "
        "FROM change c WHERE c.since_run IS NOT NULL AND "
        + _RECORDED.format(run="c.since_run", scope="c.scope", a="c.a", b="c.b")
    )
    op.execute(
        "INSERT INTO change (run_id, scope, op, kind, a, b) "
        "SELECT p.added_run, 'principal', 'upsert', p.kind, p.key, '' "
        "FROM delivered_principal p WHERE "
        + _RECORDED.format(run="p.added_run", scope="'principal'", a="p.key", b="''")
    )
    op.execute("UPDATE change SET op = 'upsert' WHERE op = 'change'")
    op.execute(
        "INSERT INTO change (run_id, scope, op, kind, a, b) "
        "SELECT r.run_id, 'relation', 'add', r.rel_type, r.a, r.b "
        "FROM delivered_relation r WHERE "
        + _RECORDED.format(run="r.run_id", scope="'relation'", a="r.a", b="r.b")
    )
    with op.batch_alter_table("change") as batch:
        batch.drop_column("since_run")
    with op.batch_alter_table("delivered_principal") as batch:
        batch.drop_column("added_run")
