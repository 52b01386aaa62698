"""The cross-process initialisation lock.

PostgreSQL: a lease row in ``dbinit_lease`` (holder host, pid, step, since,
expiry), taken and released with statements that each stand alone
(``INSERT ... ON CONFLICT DO UPDATE ... WHERE expires_at < now()``,
``DELETE ... WHERE token = ...``), so it holds whatever sits between us and
the server: a direct connection, PgBouncer in session mode, or in
transaction mode, where a session advisory lock would be handed to another
client with its pooled server connection. A heartbeat thread renews the lease
every third of ``DBINIT_LOCK_LEASE``; a holder that died (kill -9, lost host)
stops renewing and the next process takes the lease over at most
``DBINIT_LOCK_LEASE`` seconds later, without dbrepair. The table is created by
the lock itself (``CREATE TABLE IF NOT EXISTS``, as Django's migration
recorder creates ``django_migrations``): the lock is needed before any
migration has run.

SQLite: ``fcntl.flock`` on a lock file beside the database, shared by every
process on the host and released by the kernel when its holder dies; the file
names the holder.
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

LEASE_TABLE = "dbinit_lease"
LEASE_NAME = "initialize"
LEASE_DDL = (
    f"CREATE TABLE IF NOT EXISTS {LEASE_TABLE} ("
    "name varchar(64) PRIMARY KEY, token varchar(64) NOT NULL, host varchar(255) NOT NULL, "
    "pid integer NOT NULL, step varchar(100) NOT NULL, since timestamptz NOT NULL, "
    "expires_at timestamptz NOT NULL)"
)
# Waiters poll (there is no server-side wake-up without a session): backing off to this.
MAX_POLL_SECONDS = 0.5


@dataclass
class Holder:
    """Who holds the lock: enough for a person to find the process."""

    host: str
    pid: int
    step: str
    since: datetime | None = None
    expires_in: float | None = None  # seconds; negative once the lease expired (PostgreSQL)

    @property
    def expired(self) -> bool:
        return self.expires_in is not None and self.expires_in < 0

    def describe(self) -> str:
        since = f" since {self.since:%Y-%m-%d %H:%M:%S} UTC" if self.since else ""
        return f"{self.step} on {self.host} (pid {self.pid}){since}"

    def as_dict(self) -> dict:
        return {"host": self.host, "pid": self.pid, "step": self.step,
                "since": self.since.isoformat() if self.since else None,
                "expires_in": None if self.expires_in is None else round(self.expires_in, 1)}


class Hold:
    """A lock this process holds (a flock, or no lock at all: nothing to renew or rename)."""

    def set_step(self, step: str):
        """Name the step the holder is in now."""


@dataclass
class LockInfo:
    """How the initialisation lock was obtained: its kind, the wait, whether the holder did the work."""

    kind: str
    waited_ms: float = 0.0
    contended: bool = False
    # What this process holds: a _Lease (PostgreSQL), a plain Hold (flock, or no lock), or None when
    # it waited and found the work done by the holder, so it took nothing (``done_by_holder``).
    held: Hold | None = field(default_factory=Hold)

    @property
    def done_by_holder(self) -> bool:
        """Waited, then found the work done: the lock was not taken."""
        return self.held is None

    def set_step(self, step: str):
        """Name the step the holder is in now (shown to waiters, dbhealth and the admin)."""
        if self.held is not None:
            self.held.set_step(step)


def _done(already_done) -> bool:
    return bool(already_done and already_done())


def lock_file_for(connection) -> Path | None:
    from .database import sqlite_path

    path = sqlite_path(connection.settings_dict)
    return None if path is None else path.with_name(path.name + ".dbinit.lock")


def _lease_seconds() -> float:
    from django.conf import settings

    return float(settings.DBINIT_LOCK_LEASE)


@contextmanager
def initialization_lock(connection, timeout: float, step="lock", purpose="initdb", already_done=None):
    """Hold the initialisation lock for ``connection``'s database, waiting up to ``timeout``.

    ``purpose`` (e.g. ``initdb``, ``startup:wsgi``) is what other processes see as the holder's step.
    ``already_done``: while the lock is busy, each waiter asks ``already_done()`` (one cheap query)
    and, when it returns True (the holder did the work), goes on without taking the lock
    (``info.done_by_holder``). Without it, 31 waiters would take the lock one after another
    only to find nothing to do.
    """
    start = time.monotonic()
    deadline = start + timeout
    if connection.vendor == "postgresql":
        lock = _lease_lock(connection, deadline, timeout, step, purpose, already_done)
    elif connection.vendor == "sqlite" and lock_file_for(connection) is not None:
        lock = _file_lock(connection, deadline, timeout, step, purpose, already_done)
    else:
        yield LockInfo(kind="none")
        return
    with lock as info:
        info.waited_ms = (time.monotonic() - start) * 1000
        yield info


# --- PostgreSQL: the lease -------------------------------------------------------------
def ensure_lease_table(connection):
    """Create the lease table unless it exists (several processes may race to create it)."""
    from django.db import IntegrityError, ProgrammingError

    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [LEASE_TABLE])
        if cursor.fetchone()[0]:
            return
        try:
            cursor.execute(LEASE_DDL)
        except (IntegrityError, ProgrammingError) as exc:
            # Two concurrent CREATE TABLE IF NOT EXISTS: the loser trips on pg_type's unique
            # index (23505) or sees the table (42P07). Either way the table is there now.
            # 42710: the table's row type created by the other process first ("type ... already exists").
            if getattr(exc.__cause__, "pgcode", None) not in ("23505", "42P07", "42710"):
                raise


class _Lease(Hold):
    """One held lease: its token, and the heartbeat thread that keeps it alive."""

    def __init__(self, connection, token, step):
        self.alias = connection.alias
        self.token = token
        self.step = step
        self.lost = False
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._beat, name="dbinit-lease-heartbeat", daemon=True)

    def start(self):
        self._thread.start()

    def set_step(self, step):
        self.step = step
        self._wake.set()

    def stop(self):
        self._stop.set()
        self._wake.set()
        self._thread.join(timeout=10)

    def _beat(self):
        from django.db import DatabaseError, connections

        # Its own connection (Django's are per thread): the main one may be inside a migration's
        # transaction, where a renewal would not be seen until the migration commits.
        connection = connections[self.alias]
        interval = _lease_seconds() / 3
        try:
            while not self._stop.is_set():
                self._wake.wait(interval)
                self._wake.clear()
                if self._stop.is_set():
                    break
                try:
                    with connection.cursor() as cursor:
                        cursor.execute(
                            f"UPDATE {LEASE_TABLE} SET expires_at = now() + make_interval(secs => %s), step = %s "
                            "WHERE name = %s AND token = %s",
                            [_lease_seconds(), self.step[:100], LEASE_NAME, self.token],
                        )
                        renewed = cursor.rowcount == 1
                except DatabaseError as exc:  # keep trying: the lease lasts three beats
                    logger.warning("Initialisation lease not renewed (%s); retrying", str(exc).strip()[:200])
                    connection.close()
                    continue
                if not renewed and not self.lost:
                    self.lost = True
                    logger.error("The initialisation lease expired and was taken over by another process "
                                 "(this one stalled for more than DBINIT_LOCK_LEASE=%gs)", _lease_seconds())
        finally:
            connection.close()


def _try_acquire(connection, token, purpose) -> tuple[bool, Holder | None]:
    """One statement: take the lease if it is free or expired; else say who holds it.

    Returns (taken, the row found before: the holder when not taken). Logs whom an expired
    lease belonged to.
    """
    with connection.cursor() as cursor:
        cursor.execute(
            f"WITH previous AS (SELECT host, pid, step, since, EXTRACT(EPOCH FROM (expires_at - now())) "
            f"AS expires_in FROM {LEASE_TABLE} WHERE name = %s), "
            f"taken AS (INSERT INTO {LEASE_TABLE} AS l (name, token, host, pid, step, since, expires_at) "
            "VALUES (%s, %s, %s, %s, %s, now(), now() + make_interval(secs => %s)) "
            "ON CONFLICT (name) DO UPDATE SET token = EXCLUDED.token, host = EXCLUDED.host, pid = EXCLUDED.pid, "
            "step = EXCLUDED.step, since = EXCLUDED.since, expires_at = EXCLUDED.expires_at "
            "WHERE l.expires_at < now() RETURNING 1) "
            "SELECT EXISTS (SELECT 1 FROM taken), p.host, p.pid, p.step, p.since, p.expires_in "
            "FROM (SELECT 1) AS one LEFT JOIN previous AS p ON true",
            [LEASE_NAME, LEASE_NAME, token, socket.gethostname()[:255], os.getpid(), purpose[:100], _lease_seconds()],
        )
        taken, host, pid, step, since, expires_in = cursor.fetchone()
    # The row as it was before this statement (None in a race with a holder that just released it).
    previous = None if host is None else Holder(host=host, pid=pid, step=step, since=since,
                                                 expires_in=float(expires_in))
    if taken and previous is not None:  # the row was there: its holder died without releasing it
        logger.warning("Took over the initialisation lock from %s: its lease expired %.0fs ago",
                       previous.describe(), -previous.expires_in)
    return taken, (None if taken else previous)


def lease_holder(connection) -> Holder | None:
    """Who holds the PostgreSQL lease (None if nobody, or if its table does not exist yet)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT to_regclass(%s) IS NOT NULL", [LEASE_TABLE])
        if not cursor.fetchone()[0]:
            return None
        cursor.execute(f"SELECT host, pid, step, since, EXTRACT(EPOCH FROM (expires_at - now())) "
                       f"FROM {LEASE_TABLE} WHERE name = %s", [LEASE_NAME])
        row = cursor.fetchone()
    if row is None:
        return None
    return Holder(host=row[0], pid=row[1], step=row[2], since=row[3], expires_in=float(row[4]))


def release_expired_lease(connection) -> Holder | None:
    """Delete the lease if it expired (its holder died); return whom it belonged to."""
    holder = lease_holder(connection)
    if holder is None or not holder.expired:
        return None
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {LEASE_TABLE} WHERE name = %s AND expires_at < now()", [LEASE_NAME])
    return holder


@contextmanager
def _lease_lock(connection, deadline, timeout, step, purpose, already_done=None):
    from django.db import Error

    from .configuration import describe_database

    info = LockInfo(kind="lease")
    token = uuid.uuid4().hex
    ensure_lease_table(connection)
    started = time.monotonic()
    delay = 0.05
    while True:
        # A waiter asks first whether the holder did the work: taking a lease just released by
        # a holder that finished would only make it the next holder with nothing to do.
        if info.contended and _done(already_done):
            info.held = None
            break
        taken, holder = _try_acquire(connection, token, purpose)
        if taken:
            if info.contended and _done(already_done):  # the holder finished just before: give it back
                _release_lease(connection, token)
                info.held = None
            break
        if not info.contended:
            info.contended = True
            logger.info("Waiting for the initialisation lock, held by %s",
                        holder.describe() if holder else "a process that just released it")
        now = time.monotonic()
        if now >= deadline:  # the whole timeout waited out, not up to one poll less
            target = describe_database(connection.settings_dict, connection.alias).target()
            held_by = f" by {holder.describe()}" if holder else ""
            raise DbinitError(errors.E060, step=step, target=target + held_by, timeout=f"{timeout:g}")
        if holder is not None and holder.expired:
            continue  # take it over now
        if now - started >= _lease_seconds() / 6:
            # Give the server connection back while waiting: behind a session-mode pooler with a
            # small pool, waiters that keep theirs would starve the holder's heartbeat (its first
            # renewal comes a third of the lease after it took it). Before that, a short wait polls
            # on the connection it has: a new server process for every poll of every waiter was
            # most of what 32 processes starting together on 2 cores spent beyond their own work.
            connection.close()
        time.sleep(min(delay, deadline - now))
        delay = min(delay * 1.5, MAX_POLL_SECONDS)
    if info.done_by_holder:
        yield info
        return
    lease = _Lease(connection, token, purpose)
    info.held = lease
    lease.start()
    try:
        yield info
    finally:
        lease.stop()
        try:
            _release_lease(connection, token)
        except Error:  # the connection died (InterfaceError too): the lease expires by itself within DBINIT_LOCK_LEASE
            logger.warning("Initialisation lease not released; it expires within %gs", _lease_seconds())


def _release_lease(connection, token):
    """One statement: give the lease back (only ours: the token is in the WHERE clause)."""
    with connection.cursor() as cursor:
        cursor.execute(f"DELETE FROM {LEASE_TABLE} WHERE name = %s AND token = %s", [LEASE_NAME, token])


# --- SQLite: flock ---------------------------------------------------------------------
def _poll_flock(fd, mode, path, deadline, timeout, step):
    """Take ``flock(mode)`` on ``fd``, polling up to the deadline (flock cannot wait with a timeout)."""
    import fcntl

    delay = 0.02
    while True:
        try:
            fcntl.flock(fd, mode | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            now = time.monotonic()
            if now >= deadline:  # the whole timeout waited out, not up to one poll less
                holder = file_lock_holder(path)
                held_by = f" by {holder.describe()}" if holder else ""
                raise DbinitError(errors.E060, step=step, target=f"{path}{held_by}", timeout=f"{timeout:g}") from None
            time.sleep(min(delay, deadline - now))  # backing off to 0.1 s
            delay = min(delay * 1.5, 0.1)


@contextmanager
def _file_lock(connection, deadline, timeout, step, purpose, already_done=None):
    import fcntl

    from .private import open_lock_file

    path = lock_file_for(connection)
    info = LockInfo(kind="flock")
    try:
        # 0600, never through a planted symbolic or hard link (it is truncated below).
        fd = open_lock_file(path, step=step)
    except OSError as exc:
        raise _lock_file_error(exc, path, step) from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            info.contended = True
            holder = file_lock_holder(path)
            logger.info("Waiting for the initialisation lock (%s), held by %s", path,
                        holder.describe() if holder else "another process")
        if info.contended and already_done is not None:
            # Shared waiters are all granted together when the holder releases.
            _poll_flock(fd, fcntl.LOCK_SH, path, deadline, timeout, step)
            try:
                if _done(already_done):
                    info.held = None
            finally:
                fcntl.flock(fd, fcntl.LOCK_UN)
        if info.done_by_holder:
            yield info
            return
        if info.contended:
            _poll_flock(fd, fcntl.LOCK_EX, path, deadline, timeout, step)
        os.ftruncate(fd, 0)
        since = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S")
        os.write(fd, f"{os.getpid()} {socket.gethostname()} {purpose} {since}\n".encode())
        try:
            yield info
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _lock_file_error(exc: OSError, path: Path, step) -> DbinitError:
    """The lock file cannot be opened: a full disk, a read-only file system, or a folder we may not write."""
    import errno

    reason = exc.strerror or str(exc)
    if exc.errno == errno.ENOSPC:
        return DbinitError(errors.E064, step=step, during="creating the lock file", reason=reason)
    if exc.errno == errno.EROFS:
        return DbinitError(errors.E065, step=step, during="creating the lock file", reason=f"{path}: {reason}")
    return DbinitError(errors.E063, step=step, path=str(path), reason=reason)


def file_lock_holder(path: Path) -> Holder | None:
    """Who holds the SQLite lock file (None if nobody): a shared flock succeeds only when it is free."""
    import fcntl

    from .private import open_lock_file

    if not os.path.lexists(path):
        return None
    try:
        fd = open_lock_file(path, write=False, step="health")  # E087 for a planted link: never read through it
    except FileNotFoundError:
        return None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            fcntl.flock(fd, fcntl.LOCK_UN)
            return None
        except BlockingIOError:
            pass
        fields = os.read(fd, 512).decode(errors="replace").split()
    finally:
        os.close(fd)
    pid = int(fields[0]) if fields and fields[0].isdigit() else 0
    since = None
    if len(fields) >= 4:
        try:
            since = datetime.strptime(fields[3], "%Y-%m-%dT%H:%M:%S").replace(tzinfo=UTC)
        except ValueError:
            since = None
    return Holder(host=fields[1] if len(fields) > 1 else "?", pid=pid,
                  step=fields[2] if len(fields) > 2 else "?", since=since)


def current_holder(connection) -> Holder | None:
    """Who holds the initialisation lock of ``connection``'s database right now, on either engine."""
    if connection.vendor == "postgresql":
        return lease_holder(connection)
    path = lock_file_for(connection)
    return None if path is None else file_lock_holder(path)


def held_by_another_process(connection) -> bool:
    """Whether a live process holds the initialisation lock right now (one read; an expired lease is
    nobody's: the next taker takes it over)."""
    holder = current_holder(connection)
    return holder is not None and not holder.expired
