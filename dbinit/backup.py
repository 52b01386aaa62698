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
    """Move the SQLite file and its ``-wal``/``-shm``/``-journal`` into the backup folder, together.

    The WAL is checkpointed first, so the moved file alone holds every committed row; whatever
    could not be folded in (another reader, a damaged file) travels with it under the matching
    name (``X.sqlite3-wal`` beside ``X.sqlite3``), where SQLite applies it when the copy is opened.
    Nothing is left beside the path where initdb creates the new database.
    """
    from .database import sqlite_path
    from .sqlite import checkpoint

    source_path = sqlite_path(connection.settings_dict)
    connection.close()
    target = _target_file(connection, reason, ".sqlite3")
    try:
        checkpoint(source_path)
    except sqlite3.Error as exc:
        logger.info("No checkpoint before moving %s (%s): its WAL moves with it", source_path, exc)
    try:
        os.replace(source_path, target)
        _move_side_files(source_path, target)
    except OSError as exc:
        raise DbinitError(errors.E072, target=str(source_path), reason=exc.strerror or str(exc)) from None
    logger.info("Moved %s to %s", source_path, target)
    return target


def move_stale_side_files(connection, reason: str) -> Path | None:
    """Move a ``-wal``/``-shm``/``-journal`` left without its database file into the backup folder.

    A new database created beside a stale WAL would have that WAL's pages replayed into it.
    Returns where they went, or None when there were none.
    """
    from .database import sqlite_path

    source_path = sqlite_path(connection.settings_dict)
    if source_path is None or source_path.exists():
        return None
    if not any(Path(f"{source_path}{side}").exists() for side in SQLITE_SIDE_FILES):
        return None
    target = _target_file(connection, reason, ".sqlite3")
    try:
        _move_side_files(source_path, target)
    except OSError as exc:
        raise DbinitError(errors.E072, target=str(source_path), reason=exc.strerror or str(exc)) from None
    logger.warning("Moved stale %s files without a database into %s", source_path.name, target.parent)
    return target


def _move_side_files(source_path, target):
    for side in SQLITE_SIDE_FILES:
        if Path(f"{source_path}{side}").exists():
            os.replace(f"{source_path}{side}", f"{target}{side}")


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
