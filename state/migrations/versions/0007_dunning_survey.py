"""dunning reminders (one row per invoice and ladder step), the due dates dunning read, survey answers

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-30 07:00:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pouracquit.state.types

revision = '0007'
down_revision = '0006'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('dunning_case',
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=True),
    sa.Column('checked_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'source_id')
    )
    op.create_table('dunning_reminder',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('step', sa.Integer(), nullable=False),
    sa.Column('template', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=True),
    sa.Column('amount_due', pouracquit.state.types.ExactDecimal(length=40), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('due_date', sa.Date(), nullable=False),
    sa.Column('message_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True),
    sa.Column('crm_log_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('sent_at', pouracquit.state.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connection', 'source_id', 'step')
    )
    with op.batch_alter_table('dunning_reminder', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_dunning_reminder_connection'), ['connection'], unique=False)
        batch_op.create_index(batch_op.f('ix_dunning_reminder_status'), ['status'], unique=False)
    op.create_table('survey_answer',
    sa.Column('receipt_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('customer', sa.Text(), nullable=False),
    sa.Column('score', sa.Integer(), nullable=False),
    sa.Column('comment', sa.Text(), nullable=False),
    sa.Column('answered_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('receipt_id')
    )
    with op.batch_alter_table('survey_answer', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_survey_answer_connection'), ['connection'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('survey_answer', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_survey_answer_connection'))
    op.drop_table('survey_answer')
    with op.batch_alter_table('dunning_reminder', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_dunning_reminder_status'))
        batch_op.drop_index(batch_op.f('ix_dunning_reminder_connection'))
    op.drop_table('dunning_reminder')
    op.drop_table('dunning_case')
