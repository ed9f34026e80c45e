"""issue ladder progress

- issue.ack_reached and issue.res_reached: how many levels of each SLA clock's current run have been reached (0:
  none, 1: the 80 % reminder, 2: the breach, 3: the escalation). From here on only each running clock's next
  level is planned, and each level plans the one after it when it runs.
- Existing issues take their progress from the levels of the current run that ran, were skipped or failed for
  good. Their pending (and obsolete) ladder timers, planned the old way with every level at once, are removed,
  and every unresolved issue is marked unplanned, so the planner's first pass plans each running clock's next
  level again.

Revision ID: 7d3a1c9e5b20
Revises: dba5b3ec2fff
Create Date: 2026-12-03 10:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '7d3a1c9e5b20'
down_revision: str | None = 'dba5b3ec2fff'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

LEVELS = ('warn', 'breach', 'escalate')
REACHED = ('done', 'skipped', 'failed')
WAITING = ('pending', 'obsolete')

issue = sa.table('issue', sa.column('id', sa.Integer()), sa.column('status', sa.String()),
                 sa.column('res_run', sa.Integer()), sa.column('ack_reached', sa.Integer()),
                 sa.column('res_reached', sa.Integer()), sa.column('planned_version', sa.Integer()))
occurrence = sa.table('occurrence', sa.column('key', sa.String()), sa.column('kind', sa.String()),
                      sa.column('state', sa.String()))


def _reached(clock: str, run: sa.ColumnElement[int] | int) -> sa.Case[int]:
    """The highest level of this run of this clock that ran, was skipped or failed, as a count (0-3)."""
    def key(level: str) -> sa.ColumnElement[str]:
        return (sa.literal('issue_sla:') + sa.cast(issue.c.id, sa.String()) + sa.literal(f':{clock}:')
                + sa.cast(run, sa.String()) + sa.literal(f':{level}'))

    def ran(level: str) -> sa.Exists:
        return sa.exists().where(occurrence.c.key == key(level), occurrence.c.state.in_(REACHED))

    return sa.case(*[(ran(level), n) for n, level in reversed(list(enumerate(LEVELS, 1)))], else_=0)


def upgrade() -> None:
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.add_column(sa.Column('ack_reached', sa.Integer(), server_default='0', nullable=False))
        batch_op.add_column(sa.Column('res_reached', sa.Integer(), server_default='0', nullable=False))

    bind = op.get_bind()
    unresolved = issue.c.status != 'resolved'
    bind.execute(issue.update().where(unresolved).values(
        ack_reached=_reached('ack', 1), res_reached=_reached('resolve', issue.c.res_run), planned_version=0))
    bind.execute(occurrence.delete().where(occurrence.c.kind == 'issue_sla', occurrence.c.state.in_(WAITING)))


def downgrade() -> None:
    # The old planner plans every level of each running clock; levels that ran are not planned again (their keys
    # exist), so marking the unresolved issues unplanned is enough.
    bind = op.get_bind()
    bind.execute(issue.update().where(issue.c.status != 'resolved').values(planned_version=0))
    with op.batch_alter_table('issue', schema=None) as batch_op:
        batch_op.drop_column('res_reached')
        batch_op.drop_column('ack_reached')
