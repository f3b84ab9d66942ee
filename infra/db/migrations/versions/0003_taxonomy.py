"""lesion taxonomy owned by the product (seeded) and perceptual hashes of case photos

Revision ID: 0002_taxonomy
Revises: 0002_grader
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002_taxonomy"
down_revision = "0002_grader"
branch_labels = None
depends_on = None

# Frozen here on purpose: a migration seeds what the product shipped at that revision.
SEED = [
    # name, display, category, model_class
    ("lesion", "Acne lesion (unspecified)", "acne", "lesion"),
    ("comedone", "Comedone (black/whitehead)", "acne", "lesion"),
    ("papule", "Papule", "acne", "lesion"),
    ("pustule", "Pustule", "acne", "lesion"),
    ("nodule_cyst", "Nodule / cyst", "acne", "lesion"),
    ("post_inflammatory_pigmentation", "Post-inflammatory pigmentation", "non_acne", None),
    ("scar", "Scar", "non_acne", None),
]


def upgrade() -> None:
    table = op.create_table(
        "label_types",
        sa.Column("name", sa.String(length=50), nullable=False),
        sa.Column("display", sa.String(length=100), nullable=False),
        sa.Column("category", sa.String(length=20), nullable=False),
        sa.Column("model_class", sa.String(length=50), nullable=True),
        sa.Column("position", sa.Integer(), nullable=False),
        sa.Column("active", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("name"),
    )
    op.bulk_insert(
        table,
        [
            {"name": n, "display": d, "category": c, "model_class": m, "position": i, "active": True}
            for i, (n, d, c, m) in enumerate(SEED)
        ],
    )
    op.create_table(
        "photo_hashes",
        sa.Column("case_id", sa.String(length=32), nullable=False),
        sa.Column("phash", sa.String(length=16), nullable=False),
        sa.ForeignKeyConstraint(["case_id"], ["cases.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("case_id"),
    )
    with op.batch_alter_table("photo_hashes", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_photo_hashes_phash"), ["phash"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("photo_hashes", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_photo_hashes_phash"))
    op.drop_table("photo_hashes")
    op.drop_table("label_types")
