"""Backups taken before dbinit changes or resets a database.

SQLite: SQLite's online backup API (a consistent copy even while others
write). PostgreSQL: ``pg_dump -Fc`` when the client is installed. Files go to
``DBINIT_BACKUP_DIR``, by default a ``backups/`` folder beside the SQLite file
(or in the project's ``var/`` for PostgreSQL).
"""

from __future__ import annotations

import logging
import os
import shutil
import sqlite3
import subprocess
from datetime import UTC, datetime
from pathlib import Path

from django.conf import settings

from . import errors
from .configuration import describe_database, scrub
from .errors import DbinitError

logger = logging.getLogger("dbinit")

SQLITE_SIDE_FILES = ("-journal", "-wal", "-shm")


def backup_dir(connection) -> Path:
    if settings.DBINIT_BACKUP_DIR:
        return Path(settings.DBINIT_BACKUP_DIR)
    from .database import sqlite_path

    path = sqlite_path(connection.settings_dict) if connection.vendor == "sqlite" else None
    return path.parent / "backups" if path else Path(settings.BASE_DIR) / "var" / "backups"


def _stamp() -> str:
    return datetime.now(UTC).strftime("%Y%m%d-%H%M%S-%f")


def _target_file(connection, reason: str, suffix: str) -> Path:
    folder = backup_dir(connection)
    desc = describe_database(connection.settings_dict, connection.alias)
    stem = Path(desc.name).stem if connection.vendor == "sqlite" else desc.name
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise DbinitError(errors.E072, target=desc.target(), reason=f"cannot create {folder}: {exc.strerror}") from None
    return folder / f"{stem}-{_stamp()}-{reason}{suffix}"


def backup_sqlite(connection, reason: str) -> Path:
    """Copy the SQLite database with the online backup API; return the backup's path."""
    from .database import sqlite_path

    source_path = sqlite_path(connection.settings_dict)
    target = _target_file(connection, reason, ".sqlite3")
    try:
        source = sqlite3.connect(f"file:{source_path}?mode=ro", uri=True, timeout=settings.DBINIT_CONNECT_TIMEOUT)
        try:
            dest = sqlite3.connect(target)
            try:
                source.backup(dest)
            finally:
                dest.close()
        finally:
            source.close()
    except (sqlite3.Error, OSError) as exc:
        target.unlink(missing_ok=True)
        raise DbinitError(errors.E072, target=str(source_path), reason=str(exc)) from None
    logger.info("Backed up %s to %s", source_path, target)
    return target


def move_sqlite_aside(connection, reason: str) -> Path:
    """Move the SQLite file (and its journal files) into the backup folder: never just deleted."""
    from .database import sqlite_path

    source_path = sqlite_path(connection.settings_dict)
    connection.close()
    target = _target_file(connection, reason, ".sqlite3")
    try:
        if Path(f"{source_path}-wal").exists():
            # A WAL file holds committed pages: take a consistent copy, then move the rest aside.
            target = backup_sqlite(connection, reason)
            os.replace(source_path, f"{target}.original")
        else:
            os.replace(source_path, target)
        for side in SQLITE_SIDE_FILES:
            if Path(f"{source_path}{side}").exists():
                os.replace(f"{source_path}{side}", f"{target}{side}")
    except OSError as exc:
        raise DbinitError(errors.E072, target=str(source_path), reason=exc.strerror or str(exc)) from None
    logger.info("Moved %s to %s", source_path, target)
    return target


def pg_dump(connection, reason: str) -> tuple[Path | None, str]:
    """``pg_dump -Fc`` the database; returns (path, note). No client installed: (None, why)."""
    executable = shutil.which("pg_dump")
    desc = describe_database(connection.settings_dict, connection.alias)
    if executable is None:
        return None, "pg_dump is not installed (apt-get install postgresql-client): no backup was taken"
    target = _target_file(connection, reason, ".dump")
    sd = connection.settings_dict
    env = {**os.environ}
    if sd.get("PASSWORD"):
        env["PGPASSWORD"] = sd["PASSWORD"]  # the environment, never the command line
    command = [executable, "-Fc", "-f", str(target), "--no-password"]
    for flag, key in (("-h", "HOST"), ("-p", "PORT"), ("-U", "USER")):
        if sd.get(key):
            command += [flag, str(sd[key])]
    command.append(sd["NAME"])
    proc = subprocess.run(command, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        target.unlink(missing_ok=True)
        raise DbinitError(errors.E072, target=desc.target(), reason=scrub(proc.stderr.strip().splitlines()[-1]
                                                                     if proc.stderr.strip() else "pg_dump failed"))
    logger.info("Dumped %s to %s", desc.target(), target)
    return target, ""
