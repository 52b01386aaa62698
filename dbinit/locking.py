"""The cross-process initialisation lock.

PostgreSQL: a session advisory lock on a fixed key, so every process that
initialises the same database queues on it and the server releases it if a
process dies. Behind PgBouncer this needs session pooling (transaction
pooling would hand the lock's session to someone else).

SQLite: ``fcntl.flock`` on a lock file beside the database, shared by every
process on the host and released by the kernel when its holder dies.
"""

from __future__ import annotations

import logging
import os
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

# Fixed 64-bit key: int.from_bytes(b"dbinit\x00\x01", "big") - chosen once, never change it.
ADVISORY_LOCK_KEY = 0x6462696E69740001


@dataclass
class LockInfo:
    kind: str
    waited_ms: float = 0.0
    contended: bool = False


def lock_file_for(connection) -> Path | None:
    from .database import sqlite_path

    path = sqlite_path(connection.settings_dict)
    return None if path is None else path.with_name(path.name + ".dbinit.lock")


@contextmanager
def initialization_lock(connection, timeout: float, step="lock"):
    """Hold the initialisation lock for ``connection``'s database, waiting up to ``timeout``."""
    start = time.monotonic()
    deadline = start + timeout
    if connection.vendor == "postgresql":
        lock = _advisory_lock(connection, deadline, timeout, step)
    elif connection.vendor == "sqlite" and lock_file_for(connection) is not None:
        lock = _file_lock(connection, deadline, timeout, step)
    else:
        yield LockInfo(kind="none")
        return
    with lock as info:
        info.waited_ms = (time.monotonic() - start) * 1000
        yield info


@contextmanager
def _advisory_lock(connection, deadline, timeout, step):
    from django.db import Error, OperationalError

    from .configuration import describe_database

    info = LockInfo(kind="pg_advisory_lock")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            info.contended = True
            logger.info("Waiting for another process to finish initialising (advisory lock)")
            # Block in the server (woken the moment the holder releases), bounded by lock_timeout.
            remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
            cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{remaining_ms}ms"])
            try:
                cursor.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
            except OperationalError as exc:
                if getattr(exc.__cause__, "pgcode", None) != "55P03":  # lock_not_available
                    raise
                target = describe_database(connection.settings_dict, connection.alias).target()
                raise DbinitError(errors.E060, step=step, target=target, timeout=f"{timeout:g}") from None
            finally:
                cursor.execute("SELECT set_config('lock_timeout', '0', false)")
    try:
        yield info
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        except Error:  # the connection died (InterfaceError too): the server released the session's lock with it
            logger.debug("Advisory lock released with the closed connection")


@contextmanager
def _file_lock(connection, deadline, timeout, step):
    import fcntl

    path = lock_file_for(connection)
    info = LockInfo(kind="flock")
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        delay = 0.02
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not info.contended:
                    info.contended = True
                    logger.info("Waiting for another process to finish initialising (%s)", path)
                now = time.monotonic()
                if now >= deadline:  # the whole timeout waited out, not up to one poll less
                    raise DbinitError(errors.E060, step=step, target=str(path), timeout=f"{timeout:g}") from None
                time.sleep(min(delay, deadline - now))  # flock cannot wait with a timeout: poll, backing off to 0.1 s
                delay = min(delay * 1.5, 0.1)
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        try:
            yield info
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def is_stale(holder: dict) -> bool:
    """A holder idle for longer than anyone may wait for the lock is not initialising anything."""
    from django.conf import settings

    return (holder["state"] or "").startswith("idle") and holder["idle_seconds"] > settings.DBINIT_LOCK_TIMEOUT


def advisory_lock_holder(connection) -> dict | None:
    """Who holds the PostgreSQL initialisation lock right now (pid, state, idle seconds)."""
    if connection.vendor != "postgresql":
        return None
    high, low = ADVISORY_LOCK_KEY >> 32, ADVISORY_LOCK_KEY & 0xFFFFFFFF
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT a.pid, a.state, EXTRACT(EPOCH FROM (now() - a.state_change)), a.application_name "
            "FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid "
            "WHERE l.locktype = 'advisory' AND l.granted AND l.database = "
            "(SELECT oid FROM pg_database WHERE datname = current_database()) "
            "AND l.classid = %s AND l.objid = %s AND l.objsubid = 1 AND a.pid <> pg_backend_pid()",
            [high, low],
        )
        row = cursor.fetchone()
    if row is None:
        return None
    return {"pid": row[0], "state": row[1], "idle_seconds": float(row[2] or 0), "application": row[3]}


def file_lock_holder(connection) -> str | None:
    """Who holds the SQLite initialisation lock right now (the pid it wrote), or None when it is free."""
    import fcntl

    path = lock_file_for(connection)
    if path is None or not path.exists():
        return None
    fd = os.open(path, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return path.read_text().strip() or "?"
    finally:
        os.close(fd)
