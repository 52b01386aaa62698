"""The committed snapshot: what ``migrate`` makes of an empty database, as one SQL file per engine.

Rails keeps ``db/schema.rb``, Laravel ``schema:dump``: a new database is
loaded from it instead of replaying the history. ``manage.py dbsnapshot``
migrates an empty scratch database and writes its content to
``DBINIT_SNAPSHOT_DIR/<engine>.sql`` with the migration-set fingerprint in a
header line:

* SQLite: the SQL of ``sqlite3``'s ``.dump`` (``Connection.iterdump``).
* PostgreSQL: ``pg_dump --no-owner --no-privileges --inserts`` (plain SQL that
  runs over an ordinary connection, no ``psql`` needed).

When a template has to be built (:mod:`dbinit.templates`), a snapshot whose
fingerprint matches the files on disk is loaded instead of migrating; one that
does not match is ignored (``dbinit.I018``) and the migrations run. dbhealth
warns when the snapshot is stale (``dbinit.W100``); ``dbsnapshot --check``
fails then, which is how CI catches a migration committed without its snapshot.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import sqlite3
import subprocess
from pathlib import Path

from django.conf import settings

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

MARK = "-- dbinit fingerprint: "
HEADER = ("-- dbinit snapshot: what migrate makes of an empty database. Written by "
          "python manage.py dbsnapshot; do not edit.\n")


def snapshot_path(vendor: str) -> Path:
    return Path(settings.DBINIT_SNAPSHOT_DIR) / f"{vendor}.sql"


def read_stamp(path: Path) -> dict | None:
    """The fingerprint in the header of the snapshot at ``path`` (None: missing, or no readable header)."""
    try:
        with open(path, encoding="utf-8") as fh:
            for _ in range(5):
                line = fh.readline()
                if line.startswith(MARK):
                    return json.loads(line[len(MARK):])
    except (OSError, ValueError):
        return None
    return None


def usable(vendor: str, fp) -> tuple[Path | None, DbinitError | None]:
    """(the snapshot to load, None) when it matches ``fp``; (None, I018) when one exists but does not."""
    path = snapshot_path(vendor)
    if not path.exists():
        return None, None
    reason = fp.mismatch(read_stamp(path))
    if reason:
        error = DbinitError(errors.I018, path=str(path), state=f"was ignored: {reason}")
        logger.info("%s %s", error.code, error.message)
        return None, error
    return path, None


def load(connection, path: Path) -> None:
    """Run the snapshot's SQL in ``connection``'s (empty) database, all or nothing.

    Raises :class:`DbinitError` (I018, "could not be loaded") with the database left empty.
    """
    from django.db import DatabaseError

    sql = path.read_text(encoding="utf-8")
    try:
        connection.ensure_connection()
        if connection.vendor == "sqlite":
            # The dump creates tables in name order and inserts rows before their parents exist:
            # the checks Django turns on per connection are off while it loads (as the sqlite3 shell does).
            connection.connection.executescript("PRAGMA foreign_keys = OFF;\n" + sql)
        else:
            # One simple query: PostgreSQL runs the whole script in one implicit transaction.
            with connection.cursor() as cursor:
                cursor.execute(sql)
    except (sqlite3.Error, DatabaseError) as exc:
        from .database import error_text

        raise DbinitError(errors.I018, path=str(path), state=f"could not be loaded ({error_text(exc)})") from None
    finally:
        # The script's transaction is over or abandoned, and pg_dump's empties the session's
        # search_path: never reuse this session.
        connection.close()


# --- writing ----------------------------------------------------------------------------
def dump_sqlite(path: Path) -> str:
    """The SQL of ``.dump`` for the SQLite file at ``path``."""
    conn = sqlite3.connect(path)
    try:
        return "\n".join(conn.iterdump()) + "\n"
    finally:
        conn.close()


def dump_postgres(settings_dict, name) -> str:
    """Plain SQL of database ``name`` that runs over an ordinary connection (``pg_dump --inserts``)."""
    executable = shutil.which("pg_dump")
    if not executable:
        raise DbinitError(errors.E100, reason="pg_dump is not installed (apt-get install postgresql-client)")
    env = {**os.environ}
    if settings_dict.get("PASSWORD"):
        env["PGPASSWORD"] = settings_dict["PASSWORD"]  # the environment, never the command line
    command = [executable, "--no-owner", "--no-privileges", "--inserts", "--dbname", name]
    for flag, key in (("--host", "HOST"), ("--port", "PORT"), ("--username", "USER")):
        if settings_dict.get(key):
            command += [flag, str(settings_dict[key])]
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        from .configuration import scrub

        raise DbinitError(errors.E100, reason=scrub((proc.stderr.strip().splitlines() or ["pg_dump failed"])[-1]))
    # Lines starting with a backslash are psql meta-commands (pg_dump 15.14+ brackets its output
    # with \restrict/\unrestrict); with --inserts there is no COPY data that could start with one.
    return "".join(line for line in proc.stdout.splitlines(keepends=True) if not line.startswith("\\"))


def write(vendor: str, fp, body: str) -> Path:
    """Write ``body`` as the snapshot for ``vendor`` with ``fp`` in its header (atomically)."""
    path = snapshot_path(vendor)
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    partial.write_text(HEADER + MARK + json.dumps({"digest": fp.digest, **fp.parts}, sort_keys=True) + "\n" + body,
                       encoding="utf-8")
    os.replace(partial, path)
    return path


def stale(connection, strict=False, fp=None) -> DbinitError | None:
    """W100 when the committed snapshot for this engine does not match the files on disk.

    ``strict`` (``dbsnapshot --check``, CI): any difference, or no snapshot at all, is stale.
    Otherwise (dbhealth) a missing snapshot, or one written for other schema settings (another
    settings module, with other apps), is not this configuration's to judge: not stale.
    ``fp``: the current fingerprint if known (else computed without needing the database to exist).
    """
    from . import fingerprint

    path = snapshot_path(connection.vendor)
    if not path.exists():
        return DbinitError(errors.W100, path=str(path), reason="it does not exist") if strict else None
    fp = fp or fingerprint.for_server(connection)
    stamp = read_stamp(path)
    if not strict and stamp and stamp.get("settings") != fp.parts["settings"]:
        return None
    reason = fp.mismatch(stamp)
    return DbinitError(errors.W100, path=str(path), reason=reason) if reason else None


def state(connection, fp) -> str:
    """For dbhealth's informational line: what the snapshot is to this configuration."""
    path = snapshot_path(connection.vendor)
    if not path.exists():
        return "does not exist (optional)"
    stamp = read_stamp(path)
    if stamp and stamp.get("settings") != fp.parts["settings"]:
        return "was written for other schema settings (another settings module); not checked"
    return "matches the migration files"
