"""wider lease owner (host names reach 64 characters) and credential names (they carry the connection name)

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-30 04:15:00
"""

import sqlmodel
from alembic import op

revision = '0005'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('receipt') as batch:
        batch.alter_column('lease_owner', type_=sqlmodel.sql.sqltypes.AutoString(length=100),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=64), existing_nullable=True)
    with op.batch_alter_table('credential') as batch:
        batch.alter_column('name', type_=sqlmodel.sql.sqltypes.AutoString(length=200),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=100), existing_nullable=False)


def downgrade() -> None:
    with op.batch_alter_table('credential') as batch:
        batch.alter_column('name', type_=sqlmodel.sql.sqltypes.AutoString(length=100),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=200), existing_nullable=False)
    with op.batch_alter_table('receipt') as batch:
        batch.alter_column('lease_owner', type_=sqlmodel.sql.sqltypes.AutoString(length=64),
                           existing_type=sqlmodel.sql.sqltypes.AutoString(length=100), existing_nullable=True)
