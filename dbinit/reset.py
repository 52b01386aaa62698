"""resetdb's service: back up, drop everything, initialise again.

SQLite: the file is moved into the backup folder (never just deleted).
PostgreSQL: ``pg_dump`` first (when installed), then DROP and CREATE DATABASE
when the role may create databases, otherwise every table, view and sequence
of the current schema is dropped. Then :func:`dbinit.initializer.initialize`.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

from django.db import DatabaseError, connections

from . import backup as backups
from . import errors, identifiers, routing, templates
from .configuration import describe_database, scrub
from .django_private import maintenance_cursor
from .errors import DbinitError
from .initializer import initialize
from .results import InitializationResult

logger = logging.getLogger("dbinit")


@dataclass
class ResetResult:
    """What resetdb did: the database dropped and initialised again."""

    method: str = ""
    backup: Path | None = None
    note: str = ""
    init: InitializationResult | None = None

    def as_dict(self, include_password=False) -> dict:
        return {"method": self.method, "backup": str(self.backup) if self.backup else None, "note": self.note,
                "initdb": self.init.as_dict(include_password=include_password) if self.init else None}


def reset(alias="default", *, backup=True, seed=True, on_event=None) -> ResetResult:
    # Dropping a replica would drop what the primary feeds it: never.
    routing.refuse_read_only(alias, "resetdb")
    connection = connections[alias]
    result = ResetResult()
    if connection.vendor == "sqlite":
        from . import database as db

        path = db.sqlite_path(connection.settings_dict)
        # Only a file that is an SQLite database is ever moved (never a device, a pipe or notes).
        if path is not None and db.check_sqlite_file(path, step="reset"):
            result.backup = backups.move_sqlite_aside(connection, "reset")
            result.method = "moved the SQLite file (with its -wal and -shm) into the backup folder"
            result.note = "" if backup else "--no-backup has no effect on SQLite: the file is always moved, never deleted"
        else:
            result.backup = backups.move_stale_side_files(connection, "reset")
            result.method = ("moved stale -wal/-shm files (no database file) into the backup folder"
                             if result.backup else "no SQLite file to move")
    elif connection.vendor == "postgresql":
        _reset_postgres(connection, result, backup)
    else:
        raise DbinitError(errors.E003, engine=connection.settings_dict["ENGINE"])
    connection.close()
    result.init = initialize(alias, seed=seed, on_event=on_event, trigger="resetdb")
    return result


def _reset_postgres(connection, result, backup):
    from . import database as db

    exists = True
    try:
        db.connect(connection.alias, step="reset")
    except DbinitError as exc:
        if not db.is_missing_database(exc):
            raise
        exists = False
    if not exists:
        result.method = "the database did not exist"
        return
    if backup:
        result.backup, result.note = backups.pg_dump(connection, "reset")
    else:
        result.note = "--no-backup: no backup was taken"
    with connection.cursor() as cursor:
        cursor.execute("SELECT rolcreatedb OR rolsuper FROM pg_roles WHERE rolname = current_user")
        may_create = cursor.fetchone()[0]
    name = identifiers.check(connection.settings_dict["NAME"], step="reset")
    connection.close()
    if may_create:
        try:
            with maintenance_cursor(connection) as cursor:
                # Quoted by psycopg2: a name with a double quote in it is dropped as itself.
                cursor.execute(f"DROP DATABASE IF EXISTS {identifiers.quote(cursor, name)} WITH (FORCE)")
                if not templates.enabled():  # else initdb creates it, from the matching template
                    cursor.execute(f"CREATE DATABASE {identifiers.quote(cursor, name)}")
            result.method = "dropped and recreated the database"
            return
        except DatabaseError as exc:
            # Not the owner: fall back to emptying the schema, which the role can do.
            logger.warning("Could not drop the database (%s); dropping its objects instead", scrub(str(exc)))
    with connection.cursor() as cursor:
        cursor.execute("SELECT viewname FROM pg_views WHERE schemaname = current_schema()")
        views = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT tablename FROM pg_tables WHERE schemaname = current_schema()")
        tables = [r[0] for r in cursor.fetchall()]
        cursor.execute("SELECT sequencename FROM pg_sequences WHERE schemaname = current_schema()")
        sequences = [r[0] for r in cursor.fetchall()]
        for kind, names in (("VIEW", views), ("TABLE", tables), ("SEQUENCE", sequences)):
            for n in names:
                # Names come from the catalogue and may hold anything: psycopg2 quotes them.
                cursor.execute(f"DROP {kind} IF EXISTS {identifiers.quote(cursor, n, kind.lower())} CASCADE")
    result.method = f"dropped {len(tables)} table(s), {len(views)} view(s) and {len(sequences)} sequence(s)"


def describe(alias="default") -> str:
    return describe_database(connections[alias].settings_dict, alias).target()
