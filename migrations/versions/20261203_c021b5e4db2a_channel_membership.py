"""channel membership and accepted invitations

- member.left_at: the person left the partnership's channel (the row stays; they count in no new audience).
- member.channel_event_at: Slack's time of the last join or leave event applied, so a late retry of an older
  event changes nothing.
- partnerinvitation.accepted_by / accepted_at: who joined with the invitation's address, and when (the new
  status `accepted`; enums are stored as VARCHAR(32), so no type change).

Revision ID: c021b5e4db2a
Revises: 1de7810170be
Create Date: 2026-12-03 02:58:49.513178
"""
from collections.abc import Sequence

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = 'c021b5e4db2a'
down_revision: str | None = '1de7810170be'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.add_column(sa.Column('left_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))
        batch_op.add_column(sa.Column('channel_event_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table('partnerinvitation', schema=None) as batch_op:
        batch_op.add_column(sa.Column('accepted_by', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True))
        batch_op.add_column(sa.Column('accepted_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))


def downgrade() -> None:
    # The older code knows no `accepted` status: such an invitation was sent.
    invitations = sa.table('partnerinvitation', sa.column('status', sa.String()))
    op.execute(invitations.update().where(invitations.c.status == 'accepted').values(status='sent'))

    with op.batch_alter_table('partnerinvitation', schema=None) as batch_op:
        batch_op.drop_column('accepted_at')
        batch_op.drop_column('accepted_by')

    with op.batch_alter_table('member', schema=None) as batch_op:
        batch_op.drop_column('channel_event_at')
        batch_op.drop_column('left_at')
