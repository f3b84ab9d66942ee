"""cases.severity_detail: the grader's probabilities, count interval and score

Revision ID: 0002_grader
Revises: 967d8cde749d
Create Date: 2026-11-26 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_grader"
down_revision = "967d8cde749d"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.add_column(sa.Column("severity_detail", sa.JSON(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("cases") as batch:
        batch.drop_column("severity_detail")
