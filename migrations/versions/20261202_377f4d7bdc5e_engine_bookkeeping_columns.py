"""engine bookkeeping columns

- occurrence.failures: the failure count moves out of the business payload into a column (a pending
  retry's count starts again from 0 after the upgrade).
- checkinround.undelivered: reminders Slack refused for good, listed in the summary.
- partnership.channel_archived_at: a channel archived outside Partnerbot stops scheduling.
- checkinanswer.reply_claimed_at goes: a thread reply is now a `checkin_reply` occurrence. Answers saved but
  not shown yet get one, marked "may have been posted" so that it looks in the thread first.

Revision ID: 377f4d7bdc5e
Revises: fa0762ce06c3
Create Date: 2026-12-02 17:37:14.772762
"""
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
import sqlmodel
from alembic import op

revision: str = '377f4d7bdc5e'
down_revision: str | None = 'fa0762ce06c3'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.add_column(sa.Column('failures', sa.Integer(), nullable=False, server_default='0'))

    with op.batch_alter_table('checkinround', schema=None) as batch_op:
        batch_op.add_column(sa.Column('undelivered', sa.JSON(), nullable=False, server_default='[]'))

    with op.batch_alter_table('partnership', schema=None) as batch_op:
        batch_op.add_column(sa.Column('channel_archived_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    answers = sa.table('checkinanswer', sa.column('id', sa.Integer()), sa.column('reply_ts', sa.String()),
                       sa.column('updated_at', sqlmodel.sql.sqltypes.UTCDateTime()))
    unshown = op.get_bind().execute(sa.select(answers.c.id, answers.c.updated_at)
                                    .where(answers.c.reply_ts.is_(None))).all()
    if unshown:
        now = datetime.now(UTC)
        occurrence = sa.table(
            'occurrence', *(sa.column(c) for c in ('key', 'kind', 'subject_id', 'state', 'attempts', 'failures',
                                                    'revision', 'payload')),
            *(sa.column(c, sqlmodel.sql.sqltypes.UTCDateTime()) for c in ('due_at', 'run_at', 'maybe_posted_at',
                                                                           'created_at', 'updated_at')),
        )
        op.bulk_insert(occurrence, [
            {'key': f'checkin_reply:{answer_id}', 'kind': 'checkin_reply', 'subject_id': answer_id,
             'state': 'pending', 'attempts': 0, 'failures': 0, 'revision': 1, 'payload': {}, 'due_at': now,
             'run_at': now, 'maybe_posted_at': saved_at or now, 'created_at': now, 'updated_at': now}
            for answer_id, saved_at in unshown
        ])

    with op.batch_alter_table('checkinanswer', schema=None) as batch_op:
        batch_op.drop_column('reply_claimed_at')


def downgrade() -> None:
    with op.batch_alter_table('checkinanswer', schema=None) as batch_op:
        batch_op.add_column(sa.Column('reply_claimed_at', sqlmodel.sql.sqltypes.UTCDateTime(), nullable=True))

    with op.batch_alter_table('partnership', schema=None) as batch_op:
        batch_op.drop_column('channel_archived_at')

    with op.batch_alter_table('checkinround', schema=None) as batch_op:
        batch_op.drop_column('undelivered')

    with op.batch_alter_table('occurrence', schema=None) as batch_op:
        batch_op.drop_column('failures')
