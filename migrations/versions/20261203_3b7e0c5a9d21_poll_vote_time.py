"""poll vote time

- pollvote.voted_at: when a pick or answer was made (a changed vote is a new row with its own time), for the
  poll's CSV export. Votes recorded before this revision have none.

Revision ID: 3b7e0c5a9d21
Revises: fe63d9751428
Create Date: 2026-12-03 04:25:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '3b7e0c5a9d21'
down_revision: str | None = 'fe63d9751428'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('pollvote', schema=None) as batch_op:
        batch_op.add_column(sa.Column('voted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('pollvote', schema=None) as batch_op:
        batch_op.drop_column('voted_at')
