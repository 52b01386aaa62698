"""Holding dbinit's initialisation lock from a test, as another process would (no Django)."""

from __future__ import annotations

import fcntl
from contextlib import contextmanager

from dbinit.locking import LEASE_DDL, LEASE_NAME, LEASE_TABLE
from tests.support.databases import ScratchDatabase


def put_lease(db: ScratchDatabase, *, host="elsewhere", pid=4242, step="initdb:migrate", expires_in=300.0):
    """Write the PostgreSQL lease row directly: held (``expires_in`` > 0) or expired (< 0)."""
    db.execute(LEASE_DDL)
    conn = db.connect()
    try:
        with conn.cursor() as cur:
            cur.execute(f"DELETE FROM {LEASE_TABLE}")
            cur.execute(f"INSERT INTO {LEASE_TABLE} (name, token, host, pid, step, since, expires_at) "
                        "VALUES (%s, 'test', %s, %s, %s, now(), now() + make_interval(secs => %s))",
                        [LEASE_NAME, host, pid, step, expires_in])
    finally:
        conn.close()


@contextmanager
def lock_held(db: ScratchDatabase, **holder):
    """The initialisation lock held by someone else for the duration of the block, on either engine."""
    if db.engine == "sqlite":
        db.path.parent.mkdir(parents=True, exist_ok=True)
        with open(db.path.with_name(db.path.name + ".dbinit.lock"), "w") as fh:
            fcntl.flock(fh, fcntl.LOCK_EX)
            fh.write(f"{holder.get('pid', 4242)} {holder.get('host', 'elsewhere')} "
                     f"{holder.get('step', 'initdb:migrate')} 2026-01-01T00:00:00\n")
            fh.flush()
            yield
    else:
        put_lease(db, **holder)
        try:
            yield
        finally:
            db.execute(f"DELETE FROM {LEASE_TABLE}")
