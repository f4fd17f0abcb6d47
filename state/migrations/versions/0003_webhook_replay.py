"""webhook signatures seen, for replay refusal across restarts

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-30 04:00:00.000000
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pouracquit.state.types

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('webhook_seen',
    sa.Column('connection', sqlmodel.sql.sqltypes.AutoString(length=100), nullable=False),
    sa.Column('digest', sqlmodel.sql.sqltypes.AutoString(length=64), nullable=False),
    sa.Column('expires_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('connection', 'digest')
    )
    with op.batch_alter_table('webhook_seen', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_webhook_seen_expires_at'), ['expires_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('webhook_seen', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_webhook_seen_expires_at'))
    op.drop_table('webhook_seen')
