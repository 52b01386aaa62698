"""A real PgBouncer in front of the test PostgreSQL server, in transaction or session pooling mode.

Debian's ``pgbouncer`` refuses to run as root, so a root test run starts it as ``postgres``
(config, auth file and log in a folder that user owns). ``auth_type = trust`` with the
server's role listed in the auth file, a random free port and a small pool (5 server
connections per database and user, like the setups the issue was found on), so pool
exhaustion and connection hand-over happen for real.
"""

from __future__ import annotations

import dataclasses
import os
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path

from tests.support.databases import ScratchDatabase, postgres_server_url

POOL_SIZE = 5


def pgbouncer_binary() -> str | None:
    return shutil.which("pgbouncer") or next(
        (p for p in ("/usr/sbin/pgbouncer", "/usr/bin/pgbouncer") if os.access(p, os.X_OK)), None)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PgBouncer:
    """One PgBouncer process; :meth:`via` gives a database's URL through it."""

    def __init__(self, mode: str, server_url: str | None = None, pool_size: int = POOL_SIZE):
        self.mode = mode
        self.server = urllib.parse.urlsplit(server_url or postgres_server_url())
        self.pool_size = pool_size
        self.port = free_port()
        self.folder = Path(tempfile.mkdtemp(prefix=f"pgbouncer-{mode}-"))
        self.process: subprocess.Popen | None = None

    @property
    def user(self) -> str:
        return urllib.parse.unquote(self.server.username or "") or os.environ.get("USER", "postgres")

    def _write_config(self) -> Path:
        ini = self.folder / "pgbouncer.ini"
        (self.folder / "userlist.txt").write_text(f'"{self.user}" ""\n')
        ini.write_text(
            "[databases]\n"
            f"* = host={self.server.hostname or '127.0.0.1'} port={self.server.port or 5432}\n"
            "[pgbouncer]\n"
            f"listen_addr = 127.0.0.1\nlisten_port = {self.port}\nunix_socket_dir =\n"
            f"auth_type = trust\nauth_file = {self.folder / 'userlist.txt'}\n"
            f"pool_mode = {self.mode}\ndefault_pool_size = {self.pool_size}\nmax_client_conn = 500\n"
            f"logfile = {self.folder / 'pgbouncer.log'}\npidfile = {self.folder / 'pgbouncer.pid'}\n"
            # The test databases are dropped WITH (FORCE) while PgBouncer may still pool
            # connections to them; short lifetimes keep its pools from pointing at the dead.
            "server_lifetime = 60\nserver_idle_timeout = 10\n"
            "log_connections = 0\nlog_disconnections = 0\n"
        )
        return ini

    def start(self, timeout: float = 15) -> PgBouncer:
        ini = self._write_config()
        kwargs = {}
        if os.geteuid() == 0:  # "pgbouncer: PgBouncer should not run as root"
            shutil.chown(self.folder, "postgres", "postgres")
            for f in self.folder.iterdir():
                shutil.chown(f, "postgres", "postgres")
            kwargs = {"user": "postgres", "group": "postgres"}
        # Its stderr goes to a file, never to a pipe nobody reads: with a full pipe PgBouncer blocks
        # in write() and stops serving every client (seen as a hung initdb).
        with open(self.folder / "stderr.log", "w") as stderr:
            self.process = subprocess.Popen([pgbouncer_binary(), str(ini)], stdout=subprocess.DEVNULL,
                                            stderr=stderr, **kwargs)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"pgbouncer exited {self.process.returncode}: {self.log()}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                return self
            except OSError:
                time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"pgbouncer did not listen on {self.port} within {timeout}s: {self.log()}")

    def stop(self):
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.folder, ignore_errors=True)

    def log(self) -> str:
        paths = [self.folder / "stderr.log", self.folder / "pgbouncer.log"]
        return "".join(p.read_text(errors="replace") for p in paths if p.exists())

    def url(self, database: str) -> str:
        netloc = f"{self.server.username}@127.0.0.1:{self.port}" if self.server.username else f"127.0.0.1:{self.port}"
        return urllib.parse.urlunsplit(("postgres", netloc, "/" + database, "", ""))

    def via(self, db: ScratchDatabase) -> ScratchDatabase:
        """``db`` as seen through PgBouncer: subprocesses get its URL; direct SQL still goes to the server."""
        return dataclasses.replace(db, url=self.url(db.name))
