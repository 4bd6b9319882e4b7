"""Accounts that sign in with OpenID Connect: the provider's subject (``sub``), unique, null for local-only accounts.

A column and a unique index, both added in place: a batch copy of ``users`` on SQLite would drop the old table,
and with foreign keys on that cascades to every grant and session.

Revision ID: 0002
Revises: 0001
"""

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"


def upgrade() -> None:
    op.add_column("users", sa.Column("oidc_subject", sa.String(255)))
    op.create_index("ix_users_oidc_subject", "users", ["oidc_subject"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_users_oidc_subject", table_name="users")
    op.drop_column("users", "oidc_subject")
