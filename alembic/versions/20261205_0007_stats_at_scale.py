"""admin stats at scale: a covering (status, completed_at) index and per-status counts kept by triggers

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05 09:40:00

The (status, completed_at) index serves the stats' windows (on PostgreSQL an index-only scan:
the columns they read are included) and the retention cleanup's "aged out" range of a status. The status counts are
deltas appended by statement-level triggers (INSERT, DELETE: one row per status per statement,
from the transition tables) and a row-level trigger on a status change; see
``AIAnalysisTaskStatusCount``. PostgreSQL only: SQLite counts the table.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FUNCTIONS = """
CREATE FUNCTION ai_analysis_tasks_count_inserted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ai_analysis_task_status_counts (status, n) SELECT status, count(*) FROM added GROUP BY status;
  RETURN NULL;
END $$;
CREATE FUNCTION ai_analysis_tasks_count_deleted() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ai_analysis_task_status_counts (status, n) SELECT status, -count(*) FROM removed GROUP BY status;
  RETURN NULL;
END $$;
CREATE FUNCTION ai_analysis_tasks_count_moved() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  INSERT INTO ai_analysis_task_status_counts (status, n) VALUES (OLD.status, -1), (NEW.status, 1);
  RETURN NULL;
END $$;
CREATE TRIGGER ai_analysis_tasks_count_inserted AFTER INSERT ON ai_analysis_tasks
  REFERENCING NEW TABLE AS added FOR EACH STATEMENT EXECUTE FUNCTION ai_analysis_tasks_count_inserted();
CREATE TRIGGER ai_analysis_tasks_count_deleted AFTER DELETE ON ai_analysis_tasks
  REFERENCING OLD TABLE AS removed FOR EACH STATEMENT EXECUTE FUNCTION ai_analysis_tasks_count_deleted();
CREATE TRIGGER ai_analysis_tasks_count_moved AFTER UPDATE OF status ON ai_analysis_tasks
  FOR EACH ROW WHEN (OLD.status IS DISTINCT FROM NEW.status) EXECUTE FUNCTION ai_analysis_tasks_count_moved();
CREATE TRIGGER ai_analysis_tasks_count_truncated AFTER TRUNCATE ON ai_analysis_tasks
  FOR EACH STATEMENT EXECUTE FUNCTION ai_analysis_tasks_count_truncated();
"""

_TRUNCATED = """
CREATE FUNCTION ai_analysis_tasks_count_truncated() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  DELETE FROM ai_analysis_task_status_counts;
  RETURN NULL;
END $$;
"""


def upgrade() -> None:
    op.create_index(
        "ix_ai_analysis_tasks_status_completed_at",
        "ai_analysis_tasks",
        ["status", "completed_at"],
        unique=False,
        postgresql_include=["created_at", "started_at"],
    )
    op.create_table(
        "ai_analysis_task_status_counts",
        sa.Column("count_id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("n", sa.BigInteger(), nullable=False),
        sa.PrimaryKeyConstraint("count_id", name=op.f("pk_ai_analysis_task_status_counts")),
    )
    if op.get_bind().dialect.name != "postgresql":
        return
    # No task may change between the first count and the triggers (DDL is transactional here).
    op.execute("LOCK TABLE ai_analysis_tasks IN SHARE ROW EXCLUSIVE MODE")
    op.execute(_TRUNCATED)
    op.execute(_FUNCTIONS)
    op.execute(
        "INSERT INTO ai_analysis_task_status_counts (status, n) "
        "SELECT status, count(*) FROM ai_analysis_tasks GROUP BY status"
    )


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name in ("inserted", "deleted", "moved", "truncated"):
            op.execute(f"DROP TRIGGER IF EXISTS ai_analysis_tasks_count_{name} ON ai_analysis_tasks")
            op.execute(f"DROP FUNCTION IF EXISTS ai_analysis_tasks_count_{name}()")
    op.drop_table("ai_analysis_task_status_counts")
    op.drop_index("ix_ai_analysis_tasks_status_completed_at", table_name="ai_analysis_tasks")
