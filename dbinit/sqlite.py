"""SQLite fit for production: WAL, immediate transactions, a busy timeout, synchronous=NORMAL.

Measured on this project (see README, "Databases"): with Django's defaults
(deferred transactions, rollback journal) six processes running
read-then-write transactions lost about a sixth of them to "database is
locked", at once and despite the timeout: two deferred transactions that have
both read cannot both become the writer, so SQLite refuses one instead of
waiting. ``BEGIN IMMEDIATE`` takes the write lock first (and so waits for it
under the busy timeout), and WAL lets readers go on while one process writes.
These are Rails 8's defaults for SQLite in production too.

* :func:`apply_connection_defaults` fills every SQLite alias's ``OPTIONS``
  (``transaction_mode``, ``timeout``, ``init_command`` with ``synchronous``);
  the settings module calls it, so it is pure Python. What a project already
  set in ``OPTIONS`` wins.
* :func:`ensure_journal_mode` makes the journal mode persistent in the file;
  initdb calls it (it owns the file): the mode is stored in the database
  header, so every later connection, ``migrate`` and ``dbshell`` included,
  gets it.
* :func:`settings_in_force` reads back what a live connection uses, for the
  engine health check.
* :func:`checkpoint` folds the ``-wal`` file into the database file.
"""

from __future__ import annotations

import logging
import sqlite3

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

SQLITE_ENGINE = "django.db.backends.sqlite3"
JOURNAL_MODES = ("wal", "delete", "truncate", "persist")
TRANSACTION_MODES = ("immediate", "deferred", "exclusive")
SYNCHRONOUS_MODES = ("off", "normal", "full", "extra")
_SYNCHRONOUS_NAMES = dict(enumerate(m.upper() for m in SYNCHRONOUS_MODES))


def default_synchronous(journal_mode: str) -> str:
    """NORMAL is durable enough under WAL (a commit survives a crash of the process, not
    always a power loss) and avoids an fsync per commit; with a rollback journal it is not
    corruption-safe, so FULL."""
    return "normal" if journal_mode == "wal" else "full"


def apply_connection_defaults(databases: dict, *, busy_timeout: float, transaction_mode: str,
                              synchronous: str) -> None:
    """Give every SQLite entry of ``databases`` the production connection options (in place)."""
    for entry in databases.values():
        if entry.get("ENGINE") != SQLITE_ENGINE:
            continue
        options = entry.setdefault("OPTIONS", {})
        # sqlite3's `timeout` is SQLite's busy timeout: how long a writer waits for the lock.
        options.setdefault("timeout", busy_timeout)
        options.setdefault("transaction_mode", transaction_mode.upper())
        pragma = f"PRAGMA synchronous={synchronous.upper()}"
        existing = options.get("init_command", "")
        if "synchronous" not in existing.lower():
            options["init_command"] = "; ".join(c for c in (existing.strip().rstrip(";"), pragma) if c)


def journal_mode(connection) -> str:
    with connection.cursor() as cursor:
        cursor.execute("PRAGMA journal_mode")
        return cursor.fetchone()[0].lower()


def ensure_journal_mode(connection, wanted: str) -> tuple[str, DbinitError | None]:
    """Set the file's journal mode to ``wanted`` if it differs; return (mode now, warning or None).

    Switching needs a moment alone with the file: the busy timeout covers other
    processes; a file system without shared memory (some network mounts) keeps
    the old mode, which is a warning, not a failure.
    """
    from django.db import DatabaseError

    from .database import error_text

    current = journal_mode(connection)
    if current == wanted or current == "memory":
        return current, None
    with connection.cursor() as cursor:
        try:
            cursor.execute(f"PRAGMA journal_mode={wanted}")
            now = cursor.fetchone()[0].lower()
            reason = "SQLite kept it"
        except DatabaseError as exc:  # e.g. another process kept a read open past the busy timeout
            now, reason = current, error_text(exc)
    if now != wanted:
        return now, DbinitError(errors.W054, path=connection.settings_dict["NAME"], wanted=wanted, mode=now,
                                reason=reason)
    logger.info("Journal mode of %s set to %s (was %s)", connection.settings_dict["NAME"], now, current)
    return now, None


def settings_in_force(connection) -> dict:
    """What a live connection really uses: journal mode, synchronous, busy timeout, ..."""
    with connection.cursor() as cursor:
        values = {}
        for pragma in ("journal_mode", "synchronous", "busy_timeout", "foreign_keys"):
            cursor.execute(f"PRAGMA {pragma}")
            values[pragma] = cursor.fetchone()[0]
    return {
        "journal_mode": str(values["journal_mode"]).lower(),
        "synchronous": _SYNCHRONOUS_NAMES.get(values["synchronous"], str(values["synchronous"])),
        "busy_timeout_ms": int(values["busy_timeout"]),
        "foreign_keys": bool(values["foreign_keys"]),
        # Django runs BEGIN <mode> for atomic blocks; None means SQLite's DEFERRED.
        "transaction_mode": (connection.transaction_mode or "DEFERRED").upper(),
    }


def describe(in_force: dict) -> str:
    return (f"journal mode {in_force['journal_mode']}, synchronous {in_force['synchronous']}, "
            f"transactions {in_force['transaction_mode']}, busy timeout {in_force['busy_timeout_ms'] / 1000:g} s, "
            f"foreign keys {'on' if in_force['foreign_keys'] else 'off'}")


def production_problems(in_force: dict, path: str, alias: str) -> list[DbinitError]:
    """What keeps this SQLite database from serving concurrent writers in production."""
    problems = []
    if in_force["journal_mode"] != "wal":
        problems.append(DbinitError(errors.W052, path=path, mode=in_force["journal_mode"]))
    if in_force["transaction_mode"] == "DEFERRED":
        problems.append(DbinitError(errors.W053, alias=alias, problem="start transactions DEFERRED"))
    elif in_force["busy_timeout_ms"] == 0:
        problems.append(DbinitError(errors.W053, alias=alias, problem="have no busy timeout"))
    return problems


def checkpoint(path) -> tuple[int, int, int]:
    """Fold the ``-wal`` file into the database (``wal_checkpoint(TRUNCATE)``): (busy, log, done).

    Its own short connection, so Django's connection and its transaction state are untouched;
    ``busy`` is 1 when another process's reader kept part of the log.
    """
    from django.conf import settings

    conn = sqlite3.connect(str(path), timeout=settings.DBINIT_CONNECT_TIMEOUT)
    try:
        if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
            return 0, 0, 0
        return tuple(conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone())
    finally:
        conn.close()
