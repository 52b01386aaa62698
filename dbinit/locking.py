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
    done_by_holder: bool = False  # waited, then found the work done: the lock was not taken


def _done(already_done) -> bool:
    return bool(already_done and already_done())


def lock_file_for(connection) -> Path | None:
    from .database import sqlite_path

    path = sqlite_path(connection.settings_dict)
    return None if path is None else path.with_name(path.name + ".dbinit.lock")


@contextmanager
def initialization_lock(connection, timeout: float, step="lock", already_done=None):
    """Hold the initialisation lock for ``connection``'s database, waiting up to ``timeout``.

    ``already_done``: when the lock is busy, waiters queue for it in shared mode, so that the
    holder's release wakes all of them at once; each then calls ``already_done()`` and, when it
    returns True (the holder did the work), goes on without the exclusive lock
    (``info.done_by_holder``). Without it, 31 waiters would take the lock one after another
    only to find nothing to do.
    """
    start = time.monotonic()
    deadline = start + timeout
    if connection.vendor == "postgresql":
        lock = _advisory_lock(connection, deadline, timeout, step, already_done)
    elif connection.vendor == "sqlite" and lock_file_for(connection) is not None:
        lock = _file_lock(connection, deadline, timeout, step, already_done)
    else:
        yield LockInfo(kind="none")
        return
    with lock as info:
        info.waited_ms = (time.monotonic() - start) * 1000
        yield info


def _wait_in_server(cursor, function, deadline, connection, timeout, step):
    """``SELECT function(key)``, blocking in the server (woken the moment it is granted) up to the deadline."""
    from django.db import OperationalError

    from .configuration import describe_database

    remaining_ms = max(1, int((deadline - time.monotonic()) * 1000))
    cursor.execute("SELECT set_config('lock_timeout', %s, false)", [f"{remaining_ms}ms"])
    try:
        cursor.execute(f"SELECT {function}(%s)", [ADVISORY_LOCK_KEY])
    except OperationalError as exc:
        if getattr(exc.__cause__, "pgcode", None) != "55P03":  # lock_not_available
            raise
        target = describe_database(connection.settings_dict, connection.alias).target()
        raise DbinitError(errors.E060, step=step, target=target, timeout=f"{timeout:g}") from None
    finally:
        cursor.execute("SELECT set_config('lock_timeout', '0', false)")


@contextmanager
def _advisory_lock(connection, deadline, timeout, step, already_done=None):
    from django.db import Error

    info = LockInfo(kind="pg_advisory_lock")
    with connection.cursor() as cursor:
        cursor.execute("SELECT pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
        if not cursor.fetchone()[0]:
            info.contended = True
            logger.info("Waiting for another process to finish initialising (advisory lock)")
            if already_done is not None:
                # Shared waiters are all granted together when the holder releases.
                _wait_in_server(cursor, "pg_advisory_lock_shared", deadline, connection, timeout, step)
                try:
                    info.done_by_holder = _done(already_done)
                finally:
                    cursor.execute("SELECT pg_advisory_unlock_shared(%s)", [ADVISORY_LOCK_KEY])
            if not info.done_by_holder:
                _wait_in_server(cursor, "pg_advisory_lock", deadline, connection, timeout, step)
    if info.done_by_holder:
        yield info
        return
    try:
        yield info
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [ADVISORY_LOCK_KEY])
        except Error:  # the connection died (InterfaceError too): the server released the session's lock with it
            logger.debug("Advisory lock released with the closed connection")


def _poll_flock(fd, mode, info, path, deadline, timeout, step):
    import fcntl

    delay = 0.02
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:  # the whole timeout waited out, not up to one poll less
                raise DbinitError(errors.E060, step=step, target=str(path), timeout=f"{timeout:g}") from None
            time.sleep(min(delay, deadline - now))  # flock cannot wait with a timeout: poll, backing off to 0.1 s
            delay = min(delay * 1.5, 0.1)


@contextmanager
def _file_lock(connection, deadline, timeout, step, already_done=None):
    import fcntl

    from .private import open_lock_file

    path = lock_file_for(connection)
    info = LockInfo(kind="flock")
    # 0600, never through a planted symbolic or hard link (it is truncated below).
    fd = open_lock_file(path, step=step)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info.contended = True
            logger.info("Waiting for another process to finish initialising (%s)", path)
        if info.contended and already_done is not None:
            _poll_flock(fd, fcntl.LOCK_SH, info, path, deadline, timeout, step)
            try:
                info.done_by_holder = _done(already_done)
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if info.done_by_holder:
            yield info
            return
        if info.contended:
            _poll_flock(fd, fcntl.LOCK_EX, info, path, deadline, timeout, step)
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

    from .private import open_lock_file

    path = lock_file_for(connection)
    if path is None or not os.path.lexists(path):
        return None
    fd = open_lock_file(path, write=False, step="health")  # E087 for a planted link: never read through it
    try:
        fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    except BlockingIOError:
        return os.read(fd, 32).decode(errors="replace").strip() or "?"
    finally:
        os.close(fd)
