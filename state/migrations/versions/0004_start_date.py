"""a connection's start date; receipts that are not booked (backfill --no-ledger)

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-30 04:00:00
"""

import sqlalchemy as sa
from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('connection_state') as batch:
        batch.add_column(sa.Column('start_date', sa.Date(), nullable=True))
    with op.batch_alter_table('receipt') as batch:
        batch.add_column(sa.Column('book', sa.Boolean(), nullable=False, server_default=sa.true()))


def downgrade() -> None:
    with op.batch_alter_table('receipt') as batch:
        batch.drop_column('book')
    with op.batch_alter_table('connection_state') as batch:
        batch.drop_column('start_date')
