"""check-in question kinds

- checkinschedule.question_kinds and checkinround.question_kinds: the kind of each question (plain, blocker,
  need from the partner), by position, beside the question texts (which stay a list of strings, so rows
  read as before; a kind that is missing reads as plain). A round keeps the kinds it was asked with.
- Existing schedules and rounds get their kinds once from the keywords the summary used to guess with: a
  question that mentions "block" is a blocker question, one that mentions "need" a need question (when it
  mentions both, the word that comes first decides), any other is plain. From here on the kinds are set in
  the questions forms.

Revision ID: 4c22a33a117c
Revises: 3b7e0c5a9d21
Create Date: 2026-12-03 07:10:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '4c22a33a117c'
down_revision: str | None = '3b7e0c5a9d21'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TABLES = ('checkinschedule', 'checkinround')
# The old keyword guess, frozen here: the application no longer has it.
KEYWORDS = (('block', 'blocker'), ('need', 'need'))
BATCH = 1000


def kind_from_keywords(question: str) -> str:
    """The kind the old keyword guess gave a question."""
    text = str(question).lower()
    found = [(text.find(word), kind) for word, kind in KEYWORDS if word in text]
    return min(found)[1] if found else 'plain'


def upgrade() -> None:
    for table in TABLES:
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.add_column(sa.Column('question_kinds', sa.JSON(), nullable=False, server_default='[]'))

    bind = op.get_bind()
    for name in TABLES:
        table = sa.table(name, sa.column('id', sa.Integer()), sa.column('questions', sa.JSON()),
                         sa.column('question_kinds', sa.JSON()))
        update = (table.update().where(table.c.id == sa.bindparam('row_id'))
                  .values(question_kinds=sa.bindparam('kinds', type_=sa.JSON())))
        last = 0
        while True:  # in batches by id: a year of rounds need not fit in memory at once
            rows = bind.execute(sa.select(table.c.id, table.c.questions).where(table.c.id > last)
                                .order_by(table.c.id).limit(BATCH)).all()
            if not rows:
                break
            bind.execute(update, [{'row_id': row_id, 'kinds': [kind_from_keywords(q) for q in questions or []]}
                                  for row_id, questions in rows])
            last = rows[-1][0]


def downgrade() -> None:
    for table in reversed(TABLES):
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.drop_column('question_kinds')
