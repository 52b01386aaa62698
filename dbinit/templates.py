"""Fresh databases from a verified template instead of replaying every migration.

A template is what ``migrate`` makes of an empty database, made once per
migration-set fingerprint (:mod:`dbinit.fingerprint`) and stamped with it:

* SQLite: ``DBINIT_TEMPLATE_DIR/<fingerprint>.sqlite3``, built by migrating an
  empty file, copied into a new database with SQLite's backup API.
* PostgreSQL: the database ``DBINIT_TEMPLATE_PREFIX<fingerprint>`` (connections
  disallowed, fingerprint in its comment), built by migrating an empty
  database, cloned with ``CREATE DATABASE ... TEMPLATE``. Needs a role that may
  create databases, which creating the missing database needs anyway. (A role
  without CREATEDB gets no template: the database must exist already, and an
  existing database is migrated normally.)

Only a database that does not exist yet is made from a template (nothing of
anyone's can be overwritten), and only from a template whose stamped
fingerprint equals the one of the files on disk: a stale template, one from
another Django version or engine, or a corrupted file is ignored
(``dbinit.I017``) and the normal path taken. When no template matches, one is
built (migrating an empty database, as before) and then copied, so the next
database is fast. The copy ends exactly where ``migrate`` ends: same tables,
columns, indexes, constraints, sequences, ``django_migrations`` rows, content
types, permissions and reference rows (tests/test_templates.py compares them).
"""

from __future__ import annotations

import json
import logging
import os
import sqlite3
from contextlib import contextmanager, suppress
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections

from . import errors, migrations_state, snapshots
from . import fingerprint as fingerprints
from .django_private import maintenance_cursor
from .errors import DbinitError
from .results import TemplateUse

logger = logging.getLogger("dbinit")

# Key of the PostgreSQL advisory lock (in the maintenance database) held while building a template.
BUILD_LOCK_KEY = 0x6462696E69740002


def enabled() -> bool:
    return getattr(settings, "DBINIT_TEMPLATES", "off") == "on"


def _ignored(where, reason) -> DbinitError:
    error = DbinitError(errors.I017, template=where, reason=reason)
    logger.info("%s %s", error.code, error.message)
    return error


@contextmanager
def _scratch_connection(connection, name):
    """``connection`` pointed at database ``name`` for a while, as Django's test runner does it.

    The alias stays the same, so the routers decide what is migrated there exactly as they
    would for the real database (``migrate --database ALIAS``).
    """
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield connection
    finally:
        with suppress(DatabaseError):
            connection.close()
        connection.settings_dict["NAME"] = original


def _fill_empty(connection, fp, use: TemplateUse | None, from_snapshot=True):
    """Make the empty database what ``migrate`` makes of it, then stamp it with ``fp``.

    From the committed snapshot when its fingerprint matches (``from_snapshot``), else by
    migrating as ``migrate`` does.
    """
    from django.db.migrations.executor import MigrationExecutor

    path = None
    if from_snapshot:
        path, ignored = snapshots.usable(connection.vendor, fp)
        if ignored and use is not None:
            use.ignored.append(ignored)
    if path:
        try:
            snapshots.load(connection, path)
            if use is not None:
                use.snapshot = str(path)
        except DbinitError as exc:  # I018: left the database empty; migrate instead
            logger.info("%s %s", exc.code, exc.message)
            if use is not None:
                use.ignored.append(exc)
            path = None
    if not path:
        executor = MigrationExecutor(connection)
        migrations_state.apply(executor, migrations_state.forward_plan(executor), step="template")
    fingerprints.remember(connection, fp)


# --- SQLite ------------------------------------------------------------------------------
def template_dir() -> Path:
    return Path(settings.DBINIT_TEMPLATE_DIR)


def sqlite_template(fp) -> Path:
    return template_dir() / f"{fp.digest[:32]}.sqlite3"


def read_sqlite_stamp(path: Path) -> dict | None:
    """The fingerprint stamped in an SQLite template; raises sqlite3.DatabaseError for a damaged file."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0]
        if check != "ok":
            raise sqlite3.DatabaseError(check)
        row = conn.execute("SELECT value FROM dbinit_metadata WHERE key = ?", [fingerprints.KEY]).fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def _sqlite_copy(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` if ``target`` does not exist; False if another process made it first."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # a consistent copy even while another process reads the source
        finally:
            src.close()
            dst.close()
        try:
            os.link(partial, target)  # appears whole, and never over a file someone else made
        except FileExistsError:
            return False
        return True
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()


def fill_empty_sqlite(connection, path: Path, fp, use: TemplateUse | None = None, from_snapshot=True):
    """Make the new SQLite file ``path`` what ``migrate`` makes of an empty one."""
    with _scratch_connection(connection, str(path)):
        _fill_empty(connection, fp, use, from_snapshot)


def _build_sqlite(connection, template: Path, fp, use: TemplateUse) -> None:
    template.parent.mkdir(parents=True, exist_ok=True)
    building = template.with_name(f".{template.name}.{os.getpid()}.building")
    with suppress(FileNotFoundError):
        building.unlink()
    try:
        fill_empty_sqlite(connection, building, fp, use)
        os.replace(building, template)  # a reader sees the old template or the whole new one
    finally:
        with suppress(FileNotFoundError):
            building.unlink()


def restore_sqlite(connection, target: Path) -> TemplateUse:
    """Make the missing SQLite file ``target`` from the matching template (built first if need be)."""
    use = TemplateUse()
    if not enabled():
        return use
    fp = fingerprints.compute(fingerprints.engine_of(connection))
    template = sqlite_template(fp)
    if template.exists():
        try:
            reason = fp.mismatch(read_sqlite_stamp(template))
        except (sqlite3.DatabaseError, ValueError) as exc:
            reason = f"it is damaged ({str(exc).strip() or type(exc).__name__})"
        if reason:
            use.ignored.append(_ignored(str(template), reason))
    if not template.exists() or use.ignored:
        try:
            _build_sqlite(connection, template, fp, use)
        except (DbinitError, DatabaseError, sqlite3.Error, OSError) as exc:
            # The normal path migrates the real database and reports the failure properly.
            logger.info("Template %s not built (%s); migrating normally", template, exc)
            return use
        use.built = True
    connection.close()  # the target must not be open while it appears
    if _sqlite_copy(template, target):
        use.source = str(template)
    return use


# --- PostgreSQL --------------------------------------------------------------------------
def postgres_template_name(fp) -> str:
    return f"{settings.DBINIT_TEMPLATE_PREFIX}{fp.digest[:24]}"


def _stamp_of(cursor, name) -> tuple[bool, dict | None]:
    """(exists, stamped fingerprint) of database ``name``, read from the catalogue (no connection to it)."""
    cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
    row = cursor.fetchone()
    if row is None:
        return False, None
    try:
        return True, json.loads(row[0] or "")
    except ValueError:
        return True, None


@contextmanager
def scratch_postgres_database(connection, fp, use: TemplateUse | None = None, from_snapshot=True, keep_as=None):
    """A new database made what ``migrate`` makes of an empty one; dropped afterwards.

    ``keep_as``: instead of dropping it, stamp it, disallow connections and rename it to that name
    (a template appears whole or not at all).
    """
    qn = connection.ops.quote_name
    name = f"{(keep_as or settings.DBINIT_TEMPLATE_PREFIX)[:40]}_b{os.getpid()}_{os.urandom(3).hex()}"
    with maintenance_cursor(connection) as cursor:
        cursor.execute(f"CREATE DATABASE {qn(name)}")
    try:
        with _scratch_connection(connection, name):
            _fill_empty(connection, fp, use, from_snapshot)
        yield name
        if keep_as:
            with maintenance_cursor(connection) as cursor:
                stamp = json.dumps({"digest": fp.digest, **fp.parts})
                cursor.execute(f"COMMENT ON DATABASE {qn(name)} IS %s", [stamp])
                # No session may hold a template open (it would block every clone): none is allowed.
                cursor.execute(f"ALTER DATABASE {qn(name)} ALLOW_CONNECTIONS false")
                cursor.execute(f"ALTER DATABASE {qn(name)} RENAME TO {qn(keep_as)}")
            name = None
    finally:
        if name:
            with maintenance_cursor(connection) as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {qn(name)} WITH (FORCE)")


def _postgres_template(connection) -> tuple[str | None, TemplateUse]:
    """The verified template to clone (built first if need be), or None for the normal path."""
    use = TemplateUse()
    qn = connection.ops.quote_name
    try:
        with maintenance_cursor(connection) as cursor:
            fp = fingerprints.for_server(connection)
            template = postgres_template_name(fp)
            exists, stamp = _stamp_of(cursor, template)
            reason = fp.mismatch(stamp) if exists else None
            if exists and not reason:
                return template, use
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [BUILD_LOCK_KEY])
            if not cursor.fetchone()[0]:
                logger.info("Another process is building a template; migrating normally")
                return None, use
            try:
                exists, stamp = _stamp_of(cursor, template)  # built while we asked for the lock?
                reason = fp.mismatch(stamp) if exists else None
                if reason:
                    use.ignored.append(_ignored(template, reason))
                    cursor.execute(f"DROP DATABASE IF EXISTS {qn(template)} WITH (FORCE)")
                if not exists or reason:
                    with scratch_postgres_database(connection, fp, use, keep_as=template):
                        pass
                    use.built = True
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK_KEY])
            return template, use
    except (DbinitError, DatabaseError) as exc:
        # No template (e.g. a failing migration): the normal path reports the failure properly.
        logger.info("No template (%s); migrating normally", exc)
        return None, use


def create_postgres_database(alias="default") -> tuple[bool, TemplateUse]:
    """Create the missing PostgreSQL database, from the matching template when templates are on.

    Returns (this process created it, what it did with templates).
    """
    from . import database

    template, use = _postgres_template(connections[alias]) if enabled() else (None, TemplateUse())
    created = database.create_postgres_database(alias, template=template)
    if created and template:
        use.source = template
    return created, use



# --- the committed snapshot ----------------------------------------------------------------
def write_snapshot(connection):
    """Migrate an empty scratch database and write its content as the snapshot; returns (path, fingerprint).

    Always by migrating (never from the snapshot being replaced).
    """
    import tempfile

    fp = fingerprints.for_server(connection)
    if connection.vendor == "sqlite":
        with tempfile.TemporaryDirectory(prefix="dbinit-snapshot-") as folder:
            scratch = Path(folder) / "snapshot.sqlite3"
            fill_empty_sqlite(connection, scratch, fp, from_snapshot=False)
            body = snapshots.dump_sqlite(scratch)
    elif connection.vendor == "postgresql":
        with scratch_postgres_database(connection, fp, from_snapshot=False) as name:
            body = snapshots.dump_postgres(connection.settings_dict, name)
    else:
        raise DbinitError(errors.E003, engine=connection.settings_dict["ENGINE"])
    return snapshots.write(connection.vendor, fp, body), fp
