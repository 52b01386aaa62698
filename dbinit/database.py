"""Reaching the database: make sure it exists, connect with retries, name what failed.

Driver errors are translated into catalogued errors here, once, with the
password scrubbed from their text (psycopg2 may echo parts of the DSN).
"""

from __future__ import annotations

import errno
import logging
import os
import socket
import stat
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from django.db import Error as DjangoDatabaseError
from django.db import connections

from . import errors
from .configuration import describe_database, scrub
from .django_private import maintenance_cursor
from .errors import DbinitError

logger = logging.getLogger("dbinit")

SQLITE_HEADER = b"SQLite format 3\x00"
MINIMUM_VERSIONS = {"postgresql": (14,), "sqlite": (3, 31)}

# psycopg2/libpq and sqlite3 message fragments -> catalogue id, and whether waiting may help.
_PATTERNS = [
    ("could not translate host name", errors.E012, True),
    ("name or service not known", errors.E012, True),
    ("temporary failure in name resolution", errors.E012, True),
    ("password authentication failed", errors.E011, False),
    ("no password supplied", errors.E011, False),
    ("authentication failed", errors.E011, False),
    ("pg_hba.conf", errors.E011, False),
    ("does not exist", None, False),  # role or database: decided below
    ("invalid dsn", errors.E018, False),
    ("invalid connection option", errors.E018, False),
    ("invalid sslmode", errors.E018, False),
    ("invalid integer value", errors.E018, False),
    ("invalid value for parameter", errors.E018, False),
    ("database is locked", errors.E014, False),
    # Deployment topologies (issue 12): full disks, read-only databases, lost connections, poolers.
    ("database or disk is full", errors.E064, False),
    ("no space left on device", errors.E064, False),
    ("could not extend file", errors.E064, False),
    ("attempt to write a readonly database", errors.E065, False),
    ("read-only transaction", errors.E065, False),
    ("connection already closed", errors.E066, False),
    ("terminating connection due to administrator command", errors.E066, False),
    ("connection to server was lost", errors.E066, False),
    ("server login has been failing", errors.E010, True),  # PgBouncer's server_login_retry
    ("query_wait_timeout", errors.E010, True),
    ("no more connections allowed", errors.E010, True),
    ("pgbouncer cannot connect to server", errors.E010, True),
    ("file is not a database", errors.E015, False),
    ("database disk image is malformed", errors.E015, False),
    ("unable to open database file", errors.E016, False),
    ("the database system is starting up", errors.E010, True),
    ("the database system is shutting down", errors.E010, True),
    ("connection refused", errors.E010, True),
    ("timeout expired", errors.E010, True),
    ("could not connect", errors.E010, True),
    ("server closed the connection", errors.E010, True),
    ("no route to host", errors.E010, True),
    ("network is unreachable", errors.E010, True),
    ("too many connections", errors.E010, True),
    ("remaining connection slots", errors.E010, True),
]


def error_text(exc: BaseException, with_type=False) -> str:
    """The first line of ``exc``'s message, scrubbed of secrets: what a person is shown of a driver error.

    Drivers put the useful sentence first and a DSN or a context dump after it; the
    exception's class name stands in for an empty message (and prefixes it with ``with_type``).
    """
    line = next((ln.strip().rstrip(".") for ln in str(exc).splitlines() if ln.strip()), "")
    if with_type or not line:
        line = f"{type(exc).__name__}: {line}" if line else type(exc).__name__
    return scrub(line)


# Failures of the database's surroundings (the file, the disk, the server, the connection), not of a
# migration or of the seed data: a step reports them under their own id, with their own fix.
ENVIRONMENT_ERRORS = {e.id for e in (errors.E010, errors.E014, errors.E015, errors.E064, errors.E065, errors.E066)}

# Steps that are about reaching the server: "unreachable" (E010) there, "lost" (E066) anywhere else.
CONNECTING_STEPS = {"connect", "database", "health", "readiness"}


def classify(exc: BaseException, alias: str = "default", step: str | None = None, timeout: float | None = None):
    """Return ``(DbinitError, retryable)`` for a driver or Django database error (any class: InterfaceError too).

    ``timeout``: how long the caller really waited (E010 names it).
    """
    from django.conf import settings

    desc = describe_database(connections[alias].settings_dict, alias)
    reason = error_text(exc)
    low = str(exc).lower()
    timeout = timeout if timeout is not None else settings.DBINIT_CONNECT_TIMEOUT
    ctx = dict(target=desc.target(), user=desc.user, host=desc.host, name=desc.name, path=desc.name,
               reason=reason, timeout=_seconds(timeout), during=step or "a database operation")
    for fragment, code, retryable in _PATTERNS:
        if fragment in low:
            if code is None:
                if "role" in low:
                    code = errors.E011
                elif "database" in low and desc.vendor == "postgresql":
                    code = errors.E013
                else:
                    continue
            if code is errors.E010 and step and step not in CONNECTING_STEPS and not step.startswith("health"):
                code, retryable = errors.E066, False  # it was connected: the connection died under a step
            return DbinitError(code, step=step, **ctx), retryable
    return DbinitError(errors.E019, step=step, **ctx), False


def _seconds(value: float) -> str:
    return f"{round(value, 1):g}"


def is_missing_database(error: DbinitError) -> bool:
    return error.code == errors.E013.id


# --- SQLite files ------------------------------------------------------------------
def sqlite_path(settings_dict) -> Path | None:
    name = str(settings_dict.get("NAME") or "")
    if not name or name == ":memory:" or name.startswith("file:"):
        return None
    return Path(name)


def _file_kind(mode: int) -> str | None:
    """What a path that is neither a regular file nor a folder is, or None."""
    for test, kind in ((stat.S_ISFIFO, "named pipe (FIFO)"), (stat.S_ISSOCK, "socket"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device")):
        if test(mode):
            return kind
    return None


def check_sqlite_file(path: Path, step="database") -> bool:
    """Raise E015 if ``path`` exists and is not an SQLite database, E089 if it is not even a regular
    file (a FIFO would block the open for ever; a device must never be moved or written); return
    whether it exists."""
    try:
        mode = os.stat(path).st_mode  # through a symlink: a link to a database file is fine
    except FileNotFoundError:
        return False
    except OSError as exc:
        raise DbinitError(errors.E051, step=step, path=str(path), reason=exc.strerror) from None
    kind = _file_kind(mode)
    if kind:
        raise DbinitError(errors.E089, step=step, path=str(path), kind=kind)
    try:
        with open(path, "rb") as fh:
            header = fh.read(len(SQLITE_HEADER))
    except FileNotFoundError:
        return False
    except IsADirectoryError:
        raise DbinitError(errors.E015, step=step, path=str(path)) from None
    except OSError as exc:
        raise DbinitError(errors.E051, step=step, path=str(path), reason=exc.strerror) from None
    if header and header != SQLITE_HEADER:
        raise DbinitError(errors.E015, step=step, path=str(path))
    return True


def ensure_sqlite_folder(path: Path, step="database") -> bool:
    """Create the database file's folder; return whether it had to be created."""
    folder = path.parent
    if folder.is_dir():
        if not os.access(folder, os.W_OK):
            raise DbinitError(errors.E016, step=step, path=str(path), reason="permission denied")
        return False
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        reason = exc.strerror or errno.errorcode.get(exc.errno, str(exc))
        raise DbinitError(errors.E016, step=step, path=str(path), reason=reason) from None
    return True


# --- naming dbinit's connections ---------------------------------------------------------
@contextmanager
def application_name(alias: str, purpose: str):
    """PostgreSQL connections opened inside this block are named ``dbinit@HOST:PID/purpose``.

    ``pg_stat_activity`` (and PgBouncer's ``SHOW CLIENTS``) then say which host and process an
    initialisation connection belongs to. The name is a connection option, sent when the
    connection opens (a ``SET`` would leak to other clients through a transaction pooler), and
    restored afterwards so the connections a server opens for requests keep their own name.
    """
    settings_dict = connections[alias].settings_dict
    if "postgresql" not in settings_dict.get("ENGINE", ""):
        yield
        return
    options = settings_dict.setdefault("OPTIONS", {})
    previous = options.get("application_name", _UNSET)
    options["application_name"] = f"dbinit@{socket.gethostname()}:{os.getpid()}/{purpose}"[:63]
    try:
        yield
    finally:
        if previous is _UNSET:
            options.pop("application_name", None)
        else:
            options["application_name"] = previous


_UNSET = object()


# --- connecting ------------------------------------------------------------------------
@dataclass
class ConnectionInfo:
    """What connecting found: the server, how many attempts it took, one round trip's time."""

    vendor: str
    version: str
    attempts: int
    round_trip_ms: float


def connect(alias="default", timeout: float | None = None, step="connect") -> ConnectionInfo:
    """Open the connection, retrying with backoff while waiting may help, up to ``timeout``."""
    from django.conf import settings

    timeout = settings.DBINIT_CONNECT_TIMEOUT if timeout is None else timeout
    connection = connections[alias]
    started = time.monotonic()
    deadline = started + timeout
    delay, attempts = 0.1, 0
    while True:
        attempts += 1
        try:
            connection.ensure_connection()
            start = time.perf_counter()
            with connection.cursor() as cursor:
                # SQLite opens files lazily: this read is what finds a non-database file.
                cursor.execute("SELECT 1" if connection.vendor != "sqlite" else "PRAGMA schema_version")
                cursor.fetchone()
            rtt = (time.perf_counter() - start) * 1000
            break
        except DjangoDatabaseError as exc:
            _close_quietly(connection)
            error, retryable = classify(exc, alias, step, time.monotonic() - started)
            remaining = deadline - time.monotonic()
            if not retryable or remaining <= 0:
                raise error from None
            pause = min(delay, remaining)
            # A warning: shown at initdb's default verbosity, so a wait never looks like a hang.
            logger.warning("Database %s not reachable yet (%s); retry %d in %.1fs",
                        error.context["target"], error.context["reason"], attempts, pause)
            time.sleep(pause)
            delay = min(delay * 2, 2.0)
    return ConnectionInfo(connection.vendor, server_version(connection), attempts, rtt)


def _close_quietly(connection):
    try:
        connection.close()
    except DjangoDatabaseError:
        pass


def server_version(connection) -> str:
    if connection.vendor == "postgresql":
        v = connection.pg_version  # e.g. 150020
        return f"{v // 10000}.{v % 10000}"
    if connection.vendor == "sqlite":
        import sqlite3

        return sqlite3.sqlite_version
    return "?"


def check_server_version(connection, step="connect"):
    minimum = MINIMUM_VERSIONS.get(connection.vendor)
    if not minimum:
        return
    version = server_version(connection)
    parts = tuple(int(p) for p in version.split(".")[: len(minimum)] if p.isdigit())
    if parts < minimum:
        raise DbinitError(errors.E017, step=step, vendor=connection.vendor, version=version,
                          minimum=".".join(map(str, minimum)))


# --- creating a missing PostgreSQL database ---------------------------------------------
def create_postgres_database(alias="default", step="database", template: str | None = None) -> bool:
    """``CREATE DATABASE`` (``TEMPLATE template`` when given) through the server's maintenance database.

    Returns True if this process created it, False if another process won the
    race (several workers starting at once is normal, not an error).
    """
    from .identifiers import check, quote

    connection = connections[alias]
    name = check(connection.settings_dict["NAME"], step=step)
    if template is not None:
        check(template, step=step)
    for attempt in range(20):
        try:
            with maintenance_cursor(connection) as cursor:
                # Quoted by psycopg2 (Django's quote_name does not double inner quotes).
                cursor.execute(f"CREATE DATABASE {quote(cursor, name)}"
                               + (f" TEMPLATE {quote(cursor, template)}" if template else ""))
            break
        except DjangoDatabaseError as exc:
            pgcode = getattr(exc.__cause__, "pgcode", None)
            # 42P04 duplicate_database; 23505 the same race seen through pg_database's unique index.
            if pgcode in ("42P04", "23505"):
                return False
            if pgcode == "55006" and attempt < 19:  # the template is busy with another CREATE DATABASE
                time.sleep(0.1 * (attempt + 1))
                continue
            _raise_create_error(exc, alias, step, name)
    logger.info("Created database %s", name)
    return True


def _raise_create_error(exc, alias, step, name):
    error, _ = classify(exc, alias, step)
    if error.code in (errors.E010.id, errors.E011.id, errors.E012.id, errors.E018.id):
        raise error from None
    raise DbinitError(errors.E013, step=step, name=name, reason=error_text(exc)) from None
