"""tenants: every row carries its tenant, which leads every key; the tenant registry

Revision ID: 0008
Revises: 0007
Create Date: 2026-11-30 09:20:00
"""

import sqlalchemy as sa
import sqlmodel
from alembic import op

import pouracquit.state.types

revision = '0008'
down_revision = '0007'
branch_labels = None
depends_on = None

# PostgreSQL's own names for the unnamed keys of 0001..0007; SQLite's batch mode names the reflected
# ones by the same convention so they can be dropped (Alembic batch docs, "Dropping Unnamed or Named
# Foreign Key Constraints"). column_0_N_name joins every column's name.
_CONVENTION = {"pk": "%(table_name)s_pkey", "uq": "%(table_name)s_%(column_0_N_name)s_key"}
# tables keyed by a composite key: the tenant leads it
_KEYED = {
    'connection_state': ['name'],
    'invoice_snapshot': ['connection', 'source_id'],
    'quarantine': ['connection', 'source_id'],
    'event_log': ['seq'],
    'document': ['sha256'],
    'number_series': ['series'],
    'credential': ['connection', 'name'],
    'webhook_seen': ['connection', 'digest'],
    'dunning_case': ['connection', 'source_id'],
}
# tables keyed by a random id: the tenant is indexed; their unique keys gain it
_OWNED = {
    'receipt': ('receipt_connection_source_id_kind_payment_version_key', 'receipt_tenant_source_kind_version_key',
                ['connection', 'source_id', 'kind', 'payment_version']),
    'dunning_reminder': ('dunning_reminder_connection_source_id_step_key', 'dunning_reminder_tenant_source_step_key',
                         ['connection', 'source_id', 'step']),
    'survey_answer': None,
}


def _tenant() -> sa.Column:
    return sa.Column('tenant', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False, server_default='default')


def upgrade() -> None:
    for table, key in _KEYED.items():
        with op.batch_alter_table(table, naming_convention=_CONVENTION) as batch:
            batch.add_column(_tenant())
            batch.drop_constraint(f'{table}_pkey', type_='primary')
            batch.create_primary_key(f'{table}_pkey', ['tenant', *key])
            if table == 'event_log':  # each tenant's trail is a chain of its own
                batch.drop_constraint('event_log_prev_hash_key', type_='unique')
                batch.drop_constraint('event_log_hash_key', type_='unique')
                batch.create_unique_constraint('event_log_tenant_prev_hash_key', ['tenant', 'prev_hash'])
                batch.create_unique_constraint('event_log_tenant_hash_key', ['tenant', 'hash'])
    for table, unique in _OWNED.items():
        with op.batch_alter_table(table, naming_convention=_CONVENTION) as batch:
            batch.add_column(_tenant())
            batch.create_index(f'ix_{table}_tenant', ['tenant'], unique=False)
            if unique is not None:
                old, new, columns = unique
                batch.drop_constraint(old, type_='unique')
                batch.create_unique_constraint(new, ['tenant', *columns])
    op.create_table('tenant_registry',
    sa.Column('name', sqlmodel.sql.sqltypes.AutoString(length=63), nullable=False),
    sa.Column('enabled', sa.Boolean(), nullable=False),
    sa.Column('added_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.Column('changed_at', pouracquit.state.types.UTCDateTime(), nullable=False),
    sa.PrimaryKeyConstraint('name')
    )


def downgrade() -> None:
    op.drop_table('tenant_registry')
    for table, unique in _OWNED.items():
        with op.batch_alter_table(table) as batch:
            if unique is not None:
                old, new, columns = unique
                batch.drop_constraint(new, type_='unique')
                batch.create_unique_constraint(old, columns)
            batch.drop_index(f'ix_{table}_tenant')
            batch.drop_column('tenant')
    for table, key in _KEYED.items():
        with op.batch_alter_table(table) as batch:
            if table == 'event_log':
                batch.drop_constraint('event_log_tenant_hash_key', type_='unique')
                batch.drop_constraint('event_log_tenant_prev_hash_key', type_='unique')
                batch.create_unique_constraint('event_log_hash_key', ['hash'])
                batch.create_unique_constraint('event_log_prev_hash_key', ['prev_hash'])
            batch.drop_constraint(f'{table}_pkey', type_='primary')
            batch.create_primary_key(f'{table}_pkey', key)
            batch.drop_column('tenant')
