"""Tenant isolation, enforced by the session rather than remembered by each query.

A tenant's store opens sessions that carry its name (``session.info["tenant"]``).
Every ORM statement such a session runs (selects, ``Session.get``, ORM updates and
deletes) gets ``tenant = <its name>`` added for every tenant table, and a row of
another tenant can be neither added nor changed through it. A session that names
no tenant may not touch tenant tables at all: a forgotten scope is an error, not a
read across companies. This is SQLAlchemy's documented "global filter" pattern
(docs.sqlalchemy.org/en/20/orm/session_events.html#adding-global-where-on-criteria).
"""

from __future__ import annotations

import re
from typing import Any

from sqlalchemy import event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria

from .tables import DEFAULT_TENANT, TENANT_PATTERN, Tenanted

__all__ = ["DEFAULT_TENANT", "TenantBreach", "check_tenant_name", "tenant_of"]


class TenantBreach(RuntimeError):
    """Code tried to reach tenant rows without a tenant, or another tenant's rows."""


def check_tenant_name(name: str) -> str:
    if not re.fullmatch(TENANT_PATTERN, name):
        raise ValueError(f"tenant name {name!r}: use 1 to 63 lower-case letters, digits, '-' or '_', "
                         f"starting with a letter or digit")
    return name


def tenant_of(session: Session) -> str:
    tenant = session.info.get("tenant")
    if tenant is None:
        raise TenantBreach("a session without a tenant touched tenant rows; open it with store.session()")
    return str(tenant)


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    if not (state.is_select or state.is_update or state.is_delete):
        return
    tables = [m.class_ for m in state.all_mappers if issubclass(m.class_, Tenanted)]
    if not tables:
        return
    tenant = tenant_of(state.session)
    state.statement = state.statement.options(*(
        with_loader_criteria(table, table.tenant == tenant, include_aliases=True) for table in tables))


@event.listens_for(Session, "before_flush")
def _stamp_rows(session: Session, _context: Any, _instances: Any) -> None:
    rows = [row for row in (*session.new, *session.dirty, *session.deleted) if isinstance(row, Tenanted)]
    if not rows:
        return
    tenant = tenant_of(session)
    for row in session.new:
        if isinstance(row, Tenanted) and row.tenant in (None, DEFAULT_TENANT):
            row.tenant = tenant
    for row in rows:
        if row.tenant != tenant:
            raise TenantBreach(f"a session of tenant {tenant!r} tried to write a row of tenant {row.tenant!r}")
