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

from sqlalchemy import Table, event
from sqlalchemy.orm import ORMExecuteState, Session, with_loader_criteria
from sqlalchemy.sql import visitors

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


def _tables() -> dict[Table, type[Tenanted]]:
    found, todo = {}, list(Tenanted.__subclasses__())
    while todo:
        cls = todo.pop()
        todo += cls.__subclasses__()
        if "__table__" in vars(cls):
            found[cls.__table__] = cls
    return found


# every tenant table (state/tables.py defines them all before this module is imported)
TABLES = _tables()


@event.listens_for(Session, "do_orm_execute")
def _scope_statement(state: ORMExecuteState) -> None:
    if state.is_column_load or state.is_relationship_load:
        return
    # every tenant table the statement names, in a subquery or a select_from as well as in its columns
    touched = {t for t in visitors.iterate(state.statement) if isinstance(t, Table) and t in TABLES}
    touched |= {m.local_table for m in state.all_mappers if issubclass(m.class_, Tenanted)}
    if not touched:
        return
    tenant = tenant_of(state.session)
    if not state.is_orm_statement:
        raise TenantBreach("a plain table statement on tenant rows; name the model so it is scoped")
    if state.is_insert or (state.is_update and isinstance(state.parameters, list)):
        raise TenantBreach("bulk inserts and updates by primary key are not scoped; add or change rows instead")
    if state.is_update and any(getattr(k, "key", k) == "tenant" for k in (state.statement._values or {})):
        raise TenantBreach(f"a session of tenant {tenant!r} tried to move rows to another tenant")
    if state.is_select or state.is_update or state.is_delete:
        state.statement = state.statement.options(*(
            with_loader_criteria(TABLES[t], TABLES[t].tenant == tenant, include_aliases=True) for t in touched))


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
