"""credit notes: receipt kind, the receipt a credit note credits, snapshot credit totals

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-30 03:50:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pouracquit.state.types

revision = '0002'
down_revision = '0001'
branch_labels = None
depends_on = None


# The unique constraint of 0001 has no name of its own: PostgreSQL calls it
# receipt_connection_source_id_payment_version_key; SQLite's batch mode names the
# reflected one by this convention so it can be dropped (Alembic batch docs,
# "Dropping Unnamed or Named Foreign Key Constraints").
_CONVENTION = {"uq": "receipt_%(column_0_name)s_source_id_payment_version_key"}
_OLD_UNIQUE = 'receipt_connection_source_id_payment_version_key'


def upgrade() -> None:
    with op.batch_alter_table('receipt', naming_convention=_CONVENTION) as batch:
        batch.add_column(sa.Column('kind', sqlmodel.sql.sqltypes.AutoString(length=20), nullable=False,
                                   server_default='receipt'))
        batch.add_column(sa.Column('original_receipt_id', sqlmodel.sql.sqltypes.AutoString(length=32),
                                   nullable=True))
        batch.add_column(sa.Column('credits_json', sa.Text(), nullable=True))
        batch.drop_constraint(_OLD_UNIQUE, type_='unique')
        batch.create_unique_constraint('receipt_connection_source_id_kind_payment_version_key',
                                       ['connection', 'source_id', 'kind', 'payment_version'])
    with op.batch_alter_table('invoice_snapshot') as batch:
        batch.add_column(sa.Column('credit_version', sa.Integer(), nullable=False, server_default='0'))
        batch.add_column(sa.Column('credited', pouracquit.state.types.ExactDecimal(), nullable=False,
                                   server_default='0'))


def downgrade() -> None:
    with op.batch_alter_table('invoice_snapshot') as batch:
        batch.drop_column('credited')
        batch.drop_column('credit_version')
    with op.batch_alter_table('receipt') as batch:
        batch.drop_constraint('receipt_connection_source_id_kind_payment_version_key', type_='unique')
        batch.create_unique_constraint(_OLD_UNIQUE,
                                       ['connection', 'source_id', 'payment_version'])
        batch.drop_column('credits_json')
        batch.drop_column('original_receipt_id')
        batch.drop_column('kind')
