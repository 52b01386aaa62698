"""A real streaming standby of the test PostgreSQL server: ``pg_basebackup -R``, started on a free port.

The replica tests (tests/test_multidb.py) need a server that is *in recovery*
(``pg_is_in_recovery()``), not only one set read-only: a physical copy of the whole test
cluster, streaming from it, so a database created on the primary appears on the standby a
moment later. One standby per test session (the ``standby`` fixture in tests/conftest.py).

PostgreSQL refuses to run as root, so a root test run makes the copy and runs the server as
``postgres`` (``runuser``, as tests/support/pgbouncer.py runs PgBouncer) in a temporary folder
that user owns; :meth:`Standby.stop` always stops the server and removes the folder.

Replication connections need their own ``pg_hba.conf`` line (``all`` does not match them):
:func:`allow_replication` adds ``host replication all 127.0.0.1/32 trust`` to the server's
hba file and reloads it when a replication connection is refused, so a fresh machine (CI runs
``.ci/run`` on a clean clone) needs no step by hand. The server already trusts every local
connection; the line lets those connections stream WAL too. ``wal_level`` (``replica``) and
``max_wal_senders`` (10) are PostgreSQL 15's defaults; :func:`replication_problem` says what
is missing when they were changed.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

import psycopg2

from tests.support.databases import ScratchDatabase, postgres_server_url, server_query
from tests.support.pgbouncer import free_port

HBA_LINE = "host replication all 127.0.0.1/32 trust"
HBA_COMMENT = "# Added by the AI Secretary tests (tests/support/standby.py): a streaming standby of this server."
# The settings a hot standby must have at least as high as its primary (else it refuses to start).
AT_LEAST_PRIMARY = ("max_connections", "max_worker_processes", "max_wal_senders", "max_prepared_transactions",
                    "max_locks_per_transaction")


def _server(url: str) -> urllib.parse.SplitResult:
    return urllib.parse.urlsplit(url)


def setting(url: str, name: str) -> str:
    return server_query(url, "SELECT current_setting(%s)", [name])[0][0]


def bin_dir(url: str) -> Path:
    """The server's own binaries (pg_basebackup and pg_ctl of its major version)."""
    major = setting(url, "server_version_num")[:-4]
    return Path(f"/usr/lib/postgresql/{major}/bin")


def replication_refused(url: str) -> str | None:
    """None if the server accepts a physical replication connection from here, else its refusal."""
    from psycopg2.extras import PhysicalReplicationConnection

    parts = _server(url)
    try:
        psycopg2.connect(host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
                         user=urllib.parse.unquote(parts.username or "") or None, dbname="postgres",
                         connect_timeout=3, connection_factory=PhysicalReplicationConnection).close()
        return None
    except psycopg2.OperationalError as exc:
        return str(exc).strip().splitlines()[0]


def replication_problem(url: str) -> str | None:
    """What keeps the server from feeding a streaming standby, after :func:`allow_replication`."""
    if setting(url, "wal_level") not in ("replica", "logical"):
        return "wal_level is minimal (set wal_level = replica and restart the server)"
    if int(setting(url, "max_wal_senders")) < 2:
        return "max_wal_senders is below 2 (set it to 10 and restart the server)"
    return replication_refused(url)


def allow_replication(url: str) -> None:
    """Add :data:`HBA_LINE` to the server's hba file and reload it, if replication is refused.

    Idempotent, and safe when two test sessions start at once (a lock file beside the hba
    file). The line stays: another session's standby may still be streaming.
    """
    if replication_refused(url) is None:
        return
    hba = Path(setting(url, "hba_file"))
    with open(hba.parent / ".aisecretary-tests-hba.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if HBA_LINE not in hba.read_text():
            with open(hba, "a") as f:
                f.write(f"\n{HBA_COMMENT}\n{HBA_LINE}\n")
        server_query(url, "SELECT pg_reload_conf()")
    deadline = time.monotonic() + 10
    while replication_refused(url) and time.monotonic() < deadline:
        time.sleep(0.1)  # the postmaster re-reads the file asynchronously


class Standby:
    """One standby server; :attr:`url` is its maintenance database, :meth:`view` a database on it."""

    def __init__(self, primary_url: str | None = None):
        self.primary_url = primary_url or postgres_server_url()
        self.primary = _server(self.primary_url)
        self.bin = bin_dir(self.primary_url)
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix="dbinit-standby-"))
        self.data = self.folder / "data"
        self.started = False

    @property
    def url(self) -> str:
        return urllib.parse.urlunsplit(self.primary._replace(netloc=self._netloc(), path="/postgres"))

    def _netloc(self) -> str:
        user = f"{self.primary.username}@" if self.primary.username else ""
        return f"{user}127.0.0.1:{self.port}"

    def _as_postgres(self, *args, **kwargs) -> subprocess.CompletedProcess:
        prefix = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        return subprocess.run([*prefix, *map(str, args)], capture_output=True, text=True, **kwargs)

    def start(self, timeout: float = 300) -> Standby:
        if os.geteuid() == 0:
            shutil.chown(self.folder, "postgres", "postgres")
        user = urllib.parse.unquote(self.primary.username or "") or os.environ.get("USER", "postgres")
        # -c fast: no waiting for a spread checkpoint; -X stream: the WAL of the copy comes with it.
        backup = self._as_postgres(self.bin / "pg_basebackup", "-h", self.primary.hostname or "127.0.0.1",
                                   "-p", self.primary.port or 5432, "-U", user, "-D", self.data,
                                   "-R", "-X", "stream", "-c", "fast", "--no-sync", timeout=timeout)
        if backup.returncode != 0:
            self.stop()
            raise RuntimeError(f"pg_basebackup failed: {backup.stderr.strip()}")
        self._configure()
        started = self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-l", self.folder / "server.log",
                                    "-w", "-t", int(timeout), "start", timeout=timeout + 10)
        self.started = True
        if started.returncode != 0 or not self._in_recovery():
            log = self.log()
            self.stop()
            raise RuntimeError(f"the standby did not start: {started.stderr.strip()} {log[-2000:]}")
        return self

    def _configure(self):
        """Debian keeps a cluster's configuration in /etc: the copy gets a small one of its own."""
        at_least = "".join(f"{name} = {setting(self.primary_url, name)}\n" for name in AT_LEAST_PRIMARY)
        (self.data / "postgresql.conf").write_text(
            f"port = {self.port}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{self.folder}'\n"
            f"hot_standby = on\nfsync = off\nshared_buffers = 32MB\n{at_least}"
            # Replay is never cancelled for a query the tests run, nor held back by one for long.
            "max_standby_streaming_delay = 5s\nwal_receiver_status_interval = 1s\n"
        )
        (self.data / "pg_hba.conf").write_text("local all all trust\nhost all all 127.0.0.1/32 trust\n")
        if os.geteuid() == 0:
            for path in (self.data / "postgresql.conf", self.data / "pg_hba.conf"):
                shutil.chown(path, "postgres", "postgres")

    def _in_recovery(self) -> bool:
        try:
            return server_query(self.url, "SELECT pg_is_in_recovery()")[0][0]
        except psycopg2.Error:
            return False

    def stop(self):
        if self.started and (self.data / "postmaster.pid").exists():
            stopped = self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "fast", "-w", "-t", 30, "stop",
                                        timeout=40)
            if stopped.returncode != 0:
                self._as_postgres(self.bin / "pg_ctl", "-D", self.data, "-m", "immediate", "stop", timeout=40)
        self.started = False
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        path = self.folder / "server.log"
        return path.read_text(errors="replace") if path.exists() else ""

    # --- what the tests do with it -----------------------------------------------------
    def view(self, db: ScratchDatabase) -> ScratchDatabase:
        """``db`` (a database on the primary) as the standby serves it: URL and direct SQL go there."""
        return ScratchDatabase.named(db.name, self.url)

    def query(self, sql: str, params=()) -> list[tuple]:
        return server_query(self.url, sql, params)

    def catch_up(self, timeout: float = 120):
        """Wait until the standby has replayed everything the primary wrote so far."""
        target = server_query(self.primary_url, "SELECT pg_current_wal_lsn()")[0][0]
        self._wait("replay", "SELECT pg_last_wal_replay_lsn() >= %s::pg_lsn", [target], timeout)

    def receive(self, timeout: float = 120):
        """Wait until the standby has received (not necessarily replayed) what the primary wrote so far."""
        target = server_query(self.primary_url, "SELECT pg_current_wal_lsn()")[0][0]
        self._wait("receive", "SELECT pg_last_wal_receive_lsn() >= %s::pg_lsn", [target], timeout)

    def pause_replay(self):
        """Stop applying WAL (it is still received): the standby falls behind while the primary writes."""
        self.query("SELECT pg_wal_replay_pause()")
        self._wait("pause", "SELECT pg_get_wal_replay_pause_state() = 'paused'", [], 60)

    def resume_replay(self):
        self.query("SELECT pg_wal_replay_resume()")

    def _wait(self, what, sql, params, timeout):
        deadline = time.monotonic() + timeout
        while not self.query(sql, params)[0][0]:
            if time.monotonic() > deadline:
                raise RuntimeError(f"the standby did not {what} within {timeout}s: {self.log()[-2000:]}")
            time.sleep(0.05)
