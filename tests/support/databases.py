"""The fixture library: databases the tests own, real SQLite files and real PostgreSQL databases.

A :class:`ScratchDatabase` is a database the test owns (a fresh file in a
temporary folder, or a fresh PostgreSQL database with a random name), a URL
to hand to ``manage.py`` in a subprocess, and direct SQL access that does not
go through Django (so a test can damage and inspect it for real).
"""

from __future__ import annotations

import hashlib
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.parse
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_TEST_POSTGRES_URL = "postgres://root@127.0.0.1:5432/postgres"
# Users in the populated fixture's tenant (besides the seeded admin).
POPULATED_USERS = 120


def postgres_server_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", DEFAULT_TEST_POSTGRES_URL)


def _pg_connect(url: str, dbname: str | None = None):
    parts = urllib.parse.urlsplit(url)
    return psycopg2.connect(
        host=parts.hostname or "127.0.0.1",
        port=parts.port or 5432,
        user=urllib.parse.unquote(parts.username or "") or None,
        password=urllib.parse.unquote(parts.password or "") or None,
        dbname=dbname or parts.path.lstrip("/") or "postgres",
        connect_timeout=3,
    )


def postgres_reachable(url: str | None = None) -> str | None:
    """None if the server answers, else why not."""
    try:
        _pg_connect(url or postgres_server_url()).close()
        return None
    except psycopg2.Error as exc:
        return str(exc).strip().splitlines()[0]


def server_query(url: str, sql: str, params=()) -> list[tuple]:
    """Run ``sql`` in the maintenance database of the server at ``url`` (autocommit)."""
    conn = _pg_connect(url)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            cur.execute(sql, params)
            return cur.fetchall() if cur.description else []
    finally:
        conn.close()


def with_database(url: str, name: str) -> str:
    parts = urllib.parse.urlsplit(url)
    return urllib.parse.urlunsplit(parts._replace(path="/" + name))


@dataclass
class ScratchDatabase:
    engine: str  # "sqlite" or "postgresql"
    url: str
    path: Path | None = None  # SQLite file
    name: str = ""  # PostgreSQL database name
    server_url: str = ""
    env: dict = field(default_factory=dict)
    state: str = ""  # what a fixture made of it (``existing_db``: "empty" or "initialised")

    # --- lifecycle -----------------------------------------------------------------
    @classmethod
    def named(cls, name: str, server_url: str | None = None) -> ScratchDatabase:
        """The PostgreSQL database with exactly ``name`` (any characters; the URL encodes them) on ``server_url``."""
        server = server_url or postgres_server_url()
        return cls("postgresql", with_database(server, urllib.parse.quote(name, safe="")), name=name,
                   server_url=server)

    @classmethod
    def new(cls, engine: str, tmp_path: Path, *, server_url: str | None = None,
            prefix: str = "dbinit_t_") -> ScratchDatabase:
        """A database that does not exist yet: ``tmp_path/data/db.sqlite3``, or a random name.

        A PostgreSQL one's backups (resetdb's pg_dump) go to ``tmp_path/backups``, not to the
        project's ``var/backups``, where a test run would leave them (SQLite's already go beside
        the file).
        """
        if engine == "sqlite":
            path = tmp_path / "data" / "db.sqlite3"
            return cls(engine, f"sqlite:///{path}", path=path)
        db = cls.named(f"{prefix}{uuid.uuid4().hex[:12]}", server_url)
        db.env["DBINIT_BACKUP_DIR"] = str(tmp_path / "backups")
        return db

    def exists(self) -> bool:
        if self.engine == "sqlite":
            return self.path.exists()
        with self._server() as conn, conn.cursor() as cur:
            cur.execute("SELECT 1 FROM pg_database WHERE datname = %s", [self.name])
            return cur.fetchone() is not None

    def create_empty(self):
        if self.engine == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            sqlite3.connect(self.path).close()
        else:
            self._server_exec(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(self.name)))

    def clone_from(self, other: ScratchDatabase):
        """Copy ``other`` (an initialised template) into this database: fast set-up."""
        if self.engine == "sqlite":
            self.path.parent.mkdir(parents=True, exist_ok=True)
            src, dst = sqlite3.connect(other.path), sqlite3.connect(self.path)
            src.backup(dst)
            src.close()
            dst.close()
        else:
            for attempt in range(10):  # the template must have no session (autovacuum may hold one briefly)
                try:
                    self._server_exec(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                        sql.Identifier(self.name), sql.Identifier(other.name)))
                    return
                except psycopg2.errors.ObjectInUse:
                    if attempt == 9:
                        raise
                    time.sleep(0.5)

    def rename_to(self, name: str) -> ScratchDatabase:
        """Rename this PostgreSQL database (it appears under the new name whole or not at all)."""
        self._server_exec(sql.SQL("ALTER DATABASE {} RENAME TO {}").format(sql.Identifier(self.name),
                                                                           sql.Identifier(name)))
        return ScratchDatabase.named(name, self.server_url)

    def drop(self):
        if self.engine == "postgresql":
            self._server_exec(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(self.name)))

    def _server(self):
        conn = _pg_connect(self.server_url)
        conn.autocommit = True
        return conn

    def _server_exec(self, sql):
        server_query(self.server_url, sql)

    # --- direct SQL (no Django) ----------------------------------------------------
    def connect(self):
        if self.engine == "sqlite":
            conn = sqlite3.connect(self.path, timeout=10)
            conn.isolation_level = None
            return conn
        conn = _pg_connect(self.server_url, self.name)
        conn.autocommit = True
        return conn

    def query(self, sql: str, params=()) -> list[tuple]:
        conn = self.connect()
        try:
            cur = conn.cursor()
            cur.execute(sql.replace("%s", "?") if self.engine == "sqlite" else sql, params)
            rows = cur.fetchall() if cur.description else []
            cur.close()
            return rows
        finally:
            conn.close()

    def execute(self, *statements: str):
        conn = self.connect()
        try:
            cur = conn.cursor()
            for sql in statements:
                cur.execute(sql)
            cur.close()
        finally:
            conn.close()

    def scalar(self, sql: str, params=()):
        rows = self.query(sql, params)
        return rows[0][0] if rows else None

    def tables(self) -> set[str]:
        if self.engine == "sqlite":
            return {r[0] for r in self.query("SELECT name FROM sqlite_master WHERE type='table'")}
        return {r[0] for r in self.query(
            "SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")}

    def columns(self, table: str) -> set[str]:
        if self.engine == "sqlite":
            return {r[1] for r in self.query(f'PRAGMA table_info("{table}")')}
        return {r[0] for r in self.query(
            "SELECT column_name FROM information_schema.columns WHERE table_name = %s "
            "AND table_schema = current_schema()", (table,))}

    def applied_migrations(self) -> list[tuple[str, str]]:
        return [tuple(r) for r in self.query("SELECT app, name FROM django_migrations ORDER BY id")]

    def row_counts(self) -> dict[str, int]:
        """Rows in every table: what a test compares before and after to prove nothing was lost."""
        return {t: self.scalar(f'SELECT COUNT(*) FROM "{t}"') for t in sorted(self.tables())}

    def content_hash(self, table: str) -> str:
        """A digest of every row of ``table``, whatever order the engine returns them in."""
        if self.engine == "postgresql":
            # Row to text on the server: one value back, whatever the table's size.
            return self.scalar(f"SELECT md5(COALESCE(string_agg(t::text, E'\\n' ORDER BY t::text), '')) "
                               f'FROM "{table}" t')
        rows = sorted(repr(row) for row in self.query(f'SELECT * FROM "{table}"'))
        return hashlib.md5("\n".join(rows).encode()).hexdigest()

    def fingerprint(self) -> dict:
        """What "changed nothing" means: every table's columns, row count and content, and the applied migrations."""
        return {
            "tables": {t: {"columns": sorted(self.columns(t)), "rows": self.scalar(f'SELECT COUNT(*) FROM "{t}"'),
                           "content": self.content_hash(t)} for t in sorted(self.tables())},
            "migrations": sorted(self.applied_migrations()),
        }

    def drop_table(self, table: str):
        self.execute(f'DROP TABLE "{table}"' + (" CASCADE" if self.engine == "postgresql" else ""))

    def drop_column(self, table: str, column: str):
        self.execute(f'ALTER TABLE "{table}" DROP COLUMN "{column}"')

    def set_nullable(self, table: str, column: str, nullable: bool):
        """Make ``column`` NULL or NOT NULL behind the migrations' back (SQLite: in the stored CREATE TABLE)."""
        if self.engine == "postgresql":
            self.execute(f'ALTER TABLE "{table}" ALTER COLUMN "{column}" {"DROP" if nullable else "SET"} NOT NULL')
            return
        # SQLite keeps NOT NULL in the table's CREATE TABLE text and checks it on write only: editing
        # that text (writable_schema, as SQLite's documentation describes) changes nothing stored.
        conn = self.connect()
        try:
            sql, = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
            old, new = (" NOT NULL", " NULL") if nullable else (" NULL", " NOT NULL")
            pattern = re.compile(rf'("{re.escape(column)}" [^,]*?)(?<!NOT){re.escape(old)}(?=[ ,)])')
            changed, count = pattern.subn(lambda m: m.group(1) + new, sql, count=1)
            assert count == 1, f"{table}.{column} is not{old} in {sql}"
            version, = conn.execute("PRAGMA schema_version").fetchone()
            conn.execute("PRAGMA writable_schema = ON")
            conn.execute("UPDATE sqlite_master SET sql = ? WHERE type = 'table' AND name = ?", (changed, table))
            conn.execute(f"PRAGMA schema_version = {version + 1}")
            conn.execute("PRAGMA writable_schema = OFF")
        finally:
            conn.close()


def drop_databases_named(server_url: str, prefix: str) -> list[str]:
    """Drop every database whose name starts with ``prefix`` (templates a test or a bench run made)."""
    names = [r[0] for r in server_query(server_url, "SELECT datname FROM pg_database WHERE starts_with(datname, %s)",
                                        [prefix])]
    for name in names:
        server_query(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    return names


def manage(*args: str, db: ScratchDatabase | None = None, env: dict | None = None, timeout=120,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python manage.py ARGS`` in a subprocess, as a user would, against ``db``."""
    return python(str(ROOT / "manage.py"), *args, db=db, env=env, timeout=timeout, input=input)


def subprocess_env(db: ScratchDatabase | None = None, env: dict | None = None) -> dict:
    """The environment a subprocess gets: development defaults, ``db``'s URL, then ``env``."""
    full_env = {k: v for k, v in os.environ.items()
                if not k.startswith(("DBINIT_", "DJANGO_")) and k not in ("DATABASE_URL",)}
    full_env.update({
        "AISECRETARY_ENV": "development",
        "DBINIT_CONNECT_TIMEOUT": "5",
        "DBINIT_STARTUP": "off",
        # The normal path (migrating) unless a test asks for templates (tests/test_templates.py).
        "DBINIT_TEMPLATES": "off",
        "PYTHONUNBUFFERED": "1",
        "PYTHONDONTWRITEBYTECODE": "1",
        "PYTHONPATH": str(ROOT),
    })
    if db is not None:
        full_env["DATABASE_URL"] = db.url
        full_env.update(db.env)
    full_env.update(env or {})
    return {k: v for k, v in full_env.items() if v is not None}


def python(*args: str, db: ScratchDatabase | None = None, env: dict | None = None, timeout=120,
           input: str | None = None) -> subprocess.CompletedProcess:
    """Run ``python ARGS`` in a subprocess from the project root."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=ROOT, env=subprocess_env(db, env), capture_output=True, text=True, timeout=timeout,
        input=input, stdin=None if input is not None else subprocess.DEVNULL,
    )
