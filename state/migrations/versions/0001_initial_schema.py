"""initial schema

Revision ID: 0001
Revises: 
Create Date: 2026-11-29 05:15:04.596206
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pouracquit.state.types

revision = '0001'
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('connection_state',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('cursor', sa.Text(), nullable=True),
    sa.Column('last_run_at', pouracquit.state.types.UTCDateTime(), nullable=True),
    sa.Column('last_success_at', pouracquit.state.types.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('last_duration_s', sa.Float(), nullable=True),
    sa.Column('runs', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )
    op.create_table('credential',
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('value', sa.Text(), nullable=False),
    sa.Column('updated_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'name')
    )
    op.create_table('document',
    sa.Column('sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('receipt_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('path', sa.Text(), nullable=False),
    sa.Column('size', sa.Integer(), nullable=False),
    sa.Column('archived_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('sha256')
    )
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_document_receipt_id'), ['receipt_id'], unique=False)

    op.create_table('event_log',
    sa.Column('seq', sa.Integer(), nullable=False),
    sa.Column('at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('receipt_id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=True),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=True),
    sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=40), nullable=False),
    sa.Column('data', sa.Text(), nullable=False),
    sa.Column('prev_hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('hash', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.PrimaryKeyConstraint('seq'),
    sa.UniqueConstraint('hash'),
    sa.UniqueConstraint('prev_hash')
    )
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_event_log_connection'), ['connection'], unique=False)
        batch_op.create_index(batch_op.f('ix_event_log_receipt_id'), ['receipt_id'], unique=False)

    op.create_table('invoice_snapshot',
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('amount_paid', pouracquit.state.types.ExactDecimal(length=40), nullable=False),
    sa.Column('gross_total', pouracquit.state.types.ExactDecimal(length=40), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('fingerprint', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('paid_version', sa.Integer(), nullable=False),
    sa.Column('modified_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('seen_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'source_id')
    )
    op.create_table('number_series',
    sa.Column('series', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=False),
    sa.Column('last', sa.Integer(), nullable=False),
    sa.PrimaryKeyConstraint('series')
    )
    op.create_table('quarantine',
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('first_seen', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('last_seen', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'source_id')
    )
    op.create_table('receipt',
    sa.Column('id', sqlmodel.sql.sqltypes.AutoString(length=32), nullable=False),
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('source_id', sqlmodel.sql.sqltypes.AutoString(length=200), nullable=False),
    sa.Column('payment_version', sa.Integer(), nullable=False),
    sa.Column('status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('step', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False),
    sa.Column('intent', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True),
    sa.Column('invoice_json', sa.Text(), nullable=False),
    sa.Column('amount', pouracquit.state.types.ExactDecimal(length=40), nullable=False),
    sa.Column('currency', sqlmodel.sql.sqltypes.AutoString(length=3), nullable=False),
    sa.Column('customer', sa.Text(), nullable=False),
    sa.Column('number', sqlmodel.sql.sqltypes.AutoString(length=60), nullable=True),
    sa.Column('staged_path', sa.Text(), nullable=True),
    sa.Column('document_sha256', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('document_name', sa.Text(), nullable=True),
    sa.Column('ledger_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('ledger_attachment_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('crm_attachment_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True),
    sa.Column('attempts', sa.Integer(), nullable=False),
    sa.Column('next_attempt_at', pouracquit.state.types.UTCDateTime(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('lease_owner', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=True),
    sa.Column('lease_until', pouracquit.state.types.UTCDateTime(), nullable=True),
    sa.Column('created_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('updated_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('completed_at', pouracquit.state.types.UTCDateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('connection', 'source_id', 'payment_version')
    )
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_receipt_connection'), ['connection'], unique=False)
        batch_op.create_index(batch_op.f('ix_receipt_status'), ['status'], unique=False)



def downgrade() -> None:
    with op.batch_alter_table('receipt', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_receipt_status'))
        batch_op.drop_index(batch_op.f('ix_receipt_connection'))

    op.drop_table('receipt')
    op.drop_table('quarantine')
    op.drop_table('number_series')
    op.drop_table('invoice_snapshot')
    with op.batch_alter_table('event_log', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_event_log_receipt_id'))
        batch_op.drop_index(batch_op.f('ix_event_log_connection'))

    op.drop_table('event_log')
    with op.batch_alter_table('document', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_document_receipt_id'))

    op.drop_table('document')
    op.drop_table('credential')
    op.drop_table('connection_state')
