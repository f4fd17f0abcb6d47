"""e-mail delivery of receipts: where each receipt's e-mail stands

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-30 06:30:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

from pouracquit.state.types import UTCDateTime

revision = '0006'
down_revision = '0005'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('receipt') as batch:
        batch.add_column(sa.Column('email_status', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=True))
        batch.add_column(sa.Column('email_to', sa.Text(), nullable=True))
        batch.add_column(sa.Column('email_message_id', sqlmodel.sql.sqltypes.AutoString(length=255), nullable=True))
        batch.add_column(sa.Column('email_sent_at', UTCDateTime(), nullable=True))
        batch.add_column(sa.Column('email_error', sa.Text(), nullable=True))
        batch.add_column(sa.Column('email_log_id', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=True))
        batch.create_index('ix_receipt_email_status', ['email_status'])


def downgrade() -> None:
    with op.batch_alter_table('receipt') as batch:
        batch.drop_index('ix_receipt_email_status')
        for column in ('email_log_id', 'email_error', 'email_sent_at', 'email_message_id', 'email_to',
                       'email_status'):
            batch.drop_column(column)
