"""Opening the state store: SQLite in the data directory by default, any
SQLAlchemy URL (PostgreSQL for several workers) by config. Migrations run
at open so a new version never meets an old schema."""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError, NoSuchModuleError, OperationalError, SQLAlchemyError

from pouracquit.common.errors import ConfigError


def default_url(data_dir: Path) -> str:
    return f"sqlite:///{data_dir / 'pouracquit.sqlite'}"


SUPPORTED = "sqlite:///PATH or postgresql://USER@HOST:5432/DATABASE"


def normalise_url(url: str) -> str:
    """The store URL SQLAlchemy will open, or ValueError saying what is wrong
    (without echoing the URL, which may hold a password).

    ``postgres://`` is PostgreSQL: libpq takes both schemes and hosting
    platforms hand out DATABASE_URL in that form, only SQLAlchemy (since 1.4)
    refuses it. A URL without a driver gets psycopg, the one pouracquit
    installs (SQLAlchemy 2.0 would otherwise pick psycopg2). The store is
    built and tested on SQLite and PostgreSQL only; migrations, locking and
    numbering were never checked on another database.
    """
    try:
        parsed = make_url(url)
    except ArgumentError:
        raise ValueError(f"not a database URL; expected {SUPPORTED}") from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend in ("postgres", "postgresql"):
        parsed = parsed.set(drivername=f"postgresql+{driver or 'psycopg'}")
    elif backend != "sqlite":
        raise ValueError(f"{backend} is not supported; the state store runs on {SUPPORTED}")
    try:
        dialect = parsed.get_dialect()
        dialect.import_dbapi()
    except (NoSuchModuleError, ImportError):
        raise ValueError(f"database driver {parsed.drivername!r} is not available; "
                         f"use {SUPPORTED} (drivers installed with pouracquit)") from None
    if dialect.is_async:
        raise ValueError(f"{parsed.drivername} is an asyncio driver; use {SUPPORTED}")
    return parsed.render_as_string(hide_password=False)


def _sqlite_pragmas(dbapi_conn, _record) -> None:  # type: ignore[no-untyped-def]
    # Let SQLAlchemy's "begin" event issue the BEGIN (see _sqlite_begin).
    dbapi_conn.isolation_level = None
    cur = dbapi_conn.cursor()
    # WAL lets the admin API read while a sync writes; busy_timeout waits
    # for a writer instead of failing at once.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA foreign_keys=ON")
    cur.close()


def _sqlite_begin(conn) -> None:  # type: ignore[no-untyped-def]
    # IMMEDIATE takes the write lock up front: a read-then-write transaction
    # (the event chain, number allocation) can then never fail half-way with
    # SQLITE_BUSY_SNAPSHOT when another writer committed in between.
    conn.exec_driver_sql("BEGIN IMMEDIATE")


def make_engine(url: str) -> Engine:
    """An engine for ``url``; SQLite gets WAL and a busy timeout."""
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
        event.listen(engine, "connect", _sqlite_pragmas)
        event.listen(engine, "begin", _sqlite_begin)
        return engine
    return create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=5)


def alembic_config() -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(resources.files("pouracquit.state").joinpath("migrations")))
    return cfg


# Any fixed 64-bit number, the same in every pouracquit process: the key of the
# PostgreSQL advisory lock that lets one process at a time migrate.
MIGRATION_LOCK_KEY = 0x706F7572_61637175  # "pouracqu"


def migrate(engine: Engine) -> None:
    """Bring the schema to the latest revision, one process at a time.

    Workers starting together on a fresh database would otherwise each
    create ``alembic_version`` and all but one fail. On PostgreSQL a
    transaction-level advisory lock, taken first in the very transaction
    the upgrade runs in, makes the others wait; it is released at commit
    or rollback, so a crash mid-migration cannot leave it held, and the
    waiters then read the committed ``alembic_version`` and have nothing
    to do. SQLite needs nothing more: ``BEGIN IMMEDIATE`` (see
    ``_sqlite_begin``) already takes the database's write lock first.
    """
    cfg = alembic_config()
    with engine.begin() as conn:
        if conn.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def open_engine(url: str) -> Engine:
    """Open and migrate the store; an unusable store is a ConfigError saying why."""
    try:
        url = normalise_url(url)
    except ValueError as exc:
        raise ConfigError(f"store.url: {exc}") from None
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ConfigError(f"state directory {path.parent} cannot be created: {exc.strerror}") from None
    engine = make_engine(url)
    try:
        migrate(engine)
    except OperationalError as exc:
        where = engine.url.render_as_string(hide_password=True)
        reason = " ".join(str(exc.orig).split())  # drivers add hint lines; the error stays one line
        raise ConfigError(f"state store {where} unusable: {reason}") from None
    except SQLAlchemyError as exc:
        raise ConfigError(f"state store migration failed: {exc}") from None
    return engine
