"""Failures found behind real deployments end in their own catalogue id, never a traceback.

Each test causes the failure for real: a backend that dies in the middle of the seed step, a
folder or a file the kernel refuses to write (``chattr +i``: even root cannot), SQLite's own
"database or disk is full", a server that refuses connections, PgBouncer's login retry.
"""

import sqlite3
import subprocess

import pytest

from tests.support.databases import manage


def assert_clean_failure(proc, code):
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert code in proc.stderr, proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr, proc.stderr


@pytest.fixture
def immutable():
    """``immutable(path)`` makes a file or folder unwritable even for root, until the test ends."""
    paths = []

    def make(path):
        proc = subprocess.run(["chattr", "+i", str(path)], capture_output=True, text=True)
        if proc.returncode != 0:
            pytest.skip(f"chattr +i is not permitted here: {proc.stderr.strip()}")
        paths.append(path)

    yield make
    for path in paths:
        subprocess.run(["chattr", "-i", str(path)], check=False)


@pytest.mark.postgresql_only
def test_connection_lost_during_the_seed_step(initialized_db):
    """The backend dies while the admin is inserted (as on a server shutdown): E066, not InterfaceError."""
    initialized_db.execute(
        "DELETE FROM accounts_user",
        "CREATE FUNCTION die() RETURNS trigger AS $$ BEGIN PERFORM pg_terminate_backend(pg_backend_pid()); "
        "RETURN NEW; END $$ LANGUAGE plpgsql",
        "CREATE TRIGGER die BEFORE INSERT ON accounts_user FOR EACH ROW EXECUTE FUNCTION die()",
    )
    proc = manage("initdb", "--noinput", db=initialized_db)
    assert_clean_failure(proc, "dbinit.E066")
    assert "(step: seed)" in proc.stderr


@pytest.mark.sqlite_only
def test_unwritable_folder_without_a_lock_file(fresh_db, immutable):
    fresh_db.create_empty()
    immutable(fresh_db.path.parent)
    proc = manage("initdb", "--noinput", db=fresh_db)
    assert_clean_failure(proc, "dbinit.E063")
    assert "db.sqlite3.dbinit.lock" in proc.stderr and "(step: lock)" in proc.stderr


@pytest.mark.sqlite_only
def test_read_only_sqlite_file(fresh_db, immutable):
    fresh_db.create_empty()
    immutable(fresh_db.path)
    proc = manage("initdb", "--noinput", db=fresh_db)
    assert_clean_failure(proc, "dbinit.E065")
    assert "dbinit.E020" not in proc.stderr


@pytest.mark.postgresql_only
def test_read_only_postgresql_database(fresh_db):
    """A read-only server is found when connecting (E074, the routing rule's id), before any write fails."""
    fresh_db.create_empty()
    fresh_db.execute(f'ALTER DATABASE "{fresh_db.name}" SET default_transaction_read_only = on')
    proc = manage("initdb", "--noinput", db=fresh_db)
    assert_clean_failure(proc, "dbinit.E074")
    assert "(step: connect)" in proc.stderr and "dbinit.E020" not in proc.stderr


@pytest.mark.sqlite_only
def test_full_disk_is_its_own_id_not_a_migration_fault(tmp_path, settings):
    from dbinit.database import classify

    conn = sqlite3.connect(tmp_path / "small.sqlite3")
    conn.execute("PRAGMA max_page_count = 2")  # SQLite's own limit: the same SQLITE_FULL as a full disk
    with pytest.raises(sqlite3.OperationalError) as raised:
        conn.execute("CREATE TABLE t (x)")
        conn.execute("CREATE TABLE u (x)")
        conn.executemany("INSERT INTO t VALUES (?)", [("x" * 2000,)] * 20)
    conn.close()
    error, retryable = classify(raised.value, "default", "migrate")
    assert (error.code, retryable) == ("dbinit.E064", False)
    assert "database or disk is full" in error.message


def test_refused_connection_names_the_real_wait_and_prints_each_retry():
    proc = manage("initdb", "--noinput", env={"DATABASE_URL": "postgres://root@127.0.0.1:1/nowhere",
                                              "DBINIT_CONNECT_TIMEOUT": "2"})
    assert_clean_failure(proc, "dbinit.E010")
    assert proc.stderr.count("not reachable yet") >= 2  # a line per retry at the default verbosity
    waited = float(proc.stderr.split("within ")[1].split("s:")[0])
    assert 2.0 <= waited < 10


@pytest.mark.slow
@pytest.mark.postgresql_only
def test_missing_database_created_through_pgbouncer_names_its_login_retry(pgbouncer, fresh_db):
    """PgBouncer refuses logins to a database for server_login_retry (15 s) after one failed as missing."""
    pooled = pgbouncer.via(fresh_db)
    proc = manage("initdb", "--noinput", db=pooled, env={"DBINIT_CONNECT_TIMEOUT": "3"})
    assert_clean_failure(proc, "dbinit.E067")
    assert "server_login_retry" in proc.stderr
    assert fresh_db.exists()
    again = manage("initdb", "--noinput", db=pooled, env={"DBINIT_CONNECT_TIMEOUT": "30"})
    assert again.returncode == 0, again.stderr
