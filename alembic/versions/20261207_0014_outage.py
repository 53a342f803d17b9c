"""Results say whether the fallback engine analysed them (issue #27).

``ai_analysis_results.engine_fallback``: true when the remote analysis service's circuit was open
and the local engine analysed the recording instead (AI_ENGINE_FALLBACK=local). Older rows:
false (they were analysed by the engine their analysis_model_version names).

Revision ID: 0014_outage
Revises: 0014_practiceapi
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0014_outage"
down_revision: str | None = "0014_practiceapi"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("ai_analysis_results") as batch:
        batch.add_column(sa.Column("engine_fallback", sa.Boolean(), nullable=False, server_default=sa.false()))


def downgrade() -> None:
    with op.batch_alter_table("ai_analysis_results") as batch:
        batch.drop_column("engine_fallback")
