"""security: idempotency fingerprint, people behind keys, registered dataset snapshots

Revision ID: 0002_security
Revises: 0002_taxonomy
Create Date: 2026-11-26 22:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_security"
down_revision = "0002_taxonomy"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.add_column(sa.Column("request_fingerprint", sa.String(length=64), nullable=True))
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.add_column(sa.Column("person_id", sa.String(length=32), nullable=True))
        batch_op.create_index(batch_op.f("ix_api_keys_person_id"), ["person_id"], unique=False)
    op.create_table(
        "dataset_snapshots",
        sa.Column("id", sa.String(length=80), nullable=False),
        sa.Column("digest", sa.String(length=64), nullable=False),
        sa.Column("source", sa.String(length=50), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("case_ids", sa.JSON(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("revoked_reason", sa.Text(), nullable=True),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("dataset_snapshots", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_dataset_snapshots_digest"), ["digest"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("dataset_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_dataset_snapshots_digest"))
    op.drop_table("dataset_snapshots")
    with op.batch_alter_table("api_keys", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_api_keys_person_id"))
        batch_op.drop_column("person_id")
    with op.batch_alter_table("cases", schema=None) as batch_op:
        batch_op.drop_column("request_fingerprint")
