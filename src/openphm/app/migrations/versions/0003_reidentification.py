"""Re-identification requests for direct care, and their encrypted matched lists.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"


def upgrade() -> None:
    op.create_table(
        "reidentification",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("requester_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False, index=True),
        sa.Column("cohort", sa.String(128), nullable=False),
        sa.Column("practice_code", sa.String(32), nullable=False),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("as_of", sa.Date, nullable=False),
        sa.Column("status", sa.String(16), nullable=False, index=True),
        sa.Column("submitted", sa.Integer, nullable=False),
        sa.Column("invalid", sa.Integer, nullable=False),
        sa.Column("matched", sa.Integer, nullable=False),
        sa.Column("created_at", sa.DateTime, nullable=False),
        sa.Column("expires_at", sa.DateTime, nullable=False, index=True),
        sa.Column("decided_by_id", sa.Integer, sa.ForeignKey("users.id")),
        sa.Column("decided_at", sa.DateTime),
        sa.Column("closed_at", sa.DateTime),
    )
    op.create_table(
        "reidentification_list",
        sa.Column(
            "request_id",
            sa.Integer,
            sa.ForeignKey("reidentification.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("salt", sa.LargeBinary(32), nullable=False),
        sa.Column("nonce", sa.LargeBinary(12), nullable=False),
        sa.Column("ciphertext", sa.LargeBinary, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("reidentification_list")
    op.drop_table("reidentification")
