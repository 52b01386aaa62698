"""Every bad input ends in one clear message with its dbinit id, a non-zero exit and no traceback."""

import json
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import uuid

import pytest

from tests.support.databases import ROOT, manage, postgres_server_url, subprocess_env

SECRET = "Sup3r-Secret-pw"


def initdb(env, db=None, *args):
    return manage("initdb", "--noinput", *args, db=db, env={"DBINIT_CONNECT_TIMEOUT": "1", **env})


def assert_clean_failure(proc, code, *, exit_code=None):
    output = proc.stdout + proc.stderr
    assert proc.returncode != 0 if exit_code is None else proc.returncode == exit_code
    assert code in output, output
    assert "To fix:" in output
    assert "Traceback" not in output
    assert SECRET not in output


def pg_url(user="root", password=None, host="127.0.0.1", port=5432, name="dbinit_bad_input", query=""):
    auth = f"{user}:{password}" if password else user
    return f"postgres://{auth}@{host}:{port}/{name}{query}"


@pytest.mark.parametrize("url, code", [
    (f"postgres://root:{SECRET}@127.0.0.1:99999/db", "dbinit.E002"),  # port out of range
    (f"postgres://root:{SECRET}@127.0.0.1:abc/db", "dbinit.E002"),  # port not a number
    (f"mysql://root:{SECRET}@127.0.0.1/db", "dbinit.E003"),  # unsupported engine
    (f"postgres://root:{SECRET}@127.0.0.1:5432/", "dbinit.E002"),  # no database name
    ("not a url", "dbinit.E002"),
    ("sqlite://", "dbinit.E002"),  # no file
])
def test_malformed_database_urls(url, code):
    proc = initdb({"DATABASE_URL": url})
    assert_clean_failure(proc, code, exit_code=2)
    # Every other command fails the same clean way: the settings refuse the URL.
    check = manage("check", env={"DATABASE_URL": url})
    assert_clean_failure(check, code, exit_code=2)


@pytest.mark.parametrize("variable, value, code", [
    ("AISECRETARY_ENV", "staging", "dbinit.E001"),
    ("DBINIT_STARTUP", "sometimes", "dbinit.E005"),
    ("DBINIT_CONNECT_TIMEOUT", "soon", "dbinit.E005"),
    ("DBINIT_CONNECT_TIMEOUT", "-3", "dbinit.E005"),
    ("DBINIT_LOCK_TIMEOUT", "0", "dbinit.E005"),
    ("DBINIT_REPLICA_MAX_LAG", "-1", "dbinit.E005"),
    ("DBINIT_REPLICA_MAX_LAG", "604801", "dbinit.E005"),  # more than a week
])
def test_bad_setting_values(variable, value, code):
    proc = initdb({variable: value})
    assert_clean_failure(proc, code, exit_code=2)
    assert value in proc.stderr


def test_bad_environment_stops_wsgi_cleanly():
    proc = subprocess.run([sys.executable, "-c", "import aisecretary.wsgi"], cwd=ROOT, capture_output=True, text=True,
                          env=subprocess_env(None, {"AISECRETARY_ENV": "prod"}))
    assert_clean_failure(proc, "dbinit.E001", exit_code=2)


def test_production_requires_secret_key_and_database_url():
    proc = initdb({"AISECRETARY_ENV": "production", "SECRET_KEY": None, "DATABASE_URL": "sqlite:////tmp/x.sqlite3"})
    assert_clean_failure(proc, "dbinit.E004", exit_code=2)
    assert "SECRET_KEY" in proc.stderr
    proc = initdb({"AISECRETARY_ENV": "production", "SECRET_KEY": "k" * 50, "DATABASE_URL": None})
    assert_clean_failure(proc, "dbinit.E004", exit_code=2)
    assert "DATABASE_URL" in proc.stderr


def test_sqlite_path_that_cannot_be_created():
    proc = initdb({"DATABASE_URL": "sqlite:////proc/no-such-dir/db.sqlite3"})
    assert_clean_failure(proc, "dbinit.E016", exit_code=1)


def test_file_that_is_not_an_sqlite_database_is_left_untouched(tmp_path):
    path = tmp_path / "db.sqlite3"
    path.write_text("# my notes, not a database\n" * 20)
    proc = initdb({"DATABASE_URL": f"sqlite:///{path}"})
    assert_clean_failure(proc, "dbinit.E015", exit_code=1)
    assert path.read_text() == "# my notes, not a database\n" * 20


def test_locked_sqlite_database_waits_then_fails(tmp_path):
    path = tmp_path / "db.sqlite3"
    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("CREATE TABLE t (x)")
    holder.execute("BEGIN EXCLUSIVE")
    try:
        proc = initdb({"DATABASE_URL": f"sqlite:///{path}", "DBINIT_CONNECT_TIMEOUT": "1"}, None, "--format", "json")
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert_clean_failure(proc, "dbinit.E014", exit_code=1)
    # The connect step itself waited out DBINIT_CONNECT_TIMEOUT (its own timing, not the process's).
    failed = [(s["name"], s["status"], s["error"]["id"], s["duration_ms"] >= 1000)
              for s in json.loads(proc.stdout)["steps"] if s["status"] == "failed"]
    assert failed == [("connect", "failed", "dbinit.E014", True)], proc.stdout
    proc = initdb({"DATABASE_URL": f"sqlite:///{path}"})
    assert proc.returncode == 0, proc.stderr  # and works once the lock is gone


def test_refused_connection_retries_then_names_the_problem():
    started = time.monotonic()
    proc = initdb({"DATABASE_URL": pg_url(password=SECRET, port=1), "DBINIT_CONNECT_TIMEOUT": "2",
                   "DBINIT_LOG_LEVEL": "INFO"}, None, "-v", "2")
    elapsed = time.monotonic() - started
    assert_clean_failure(proc, "dbinit.E010", exit_code=1)
    assert "retry" in proc.stderr  # a log line per retry
    assert 2.0 <= elapsed < 30


def test_unresolvable_host():
    proc = initdb({"DATABASE_URL": pg_url(password=SECRET, host="no-such-host.invalid"),
                   "DBINIT_CONNECT_TIMEOUT": "1"})
    assert_clean_failure(proc, "dbinit.E012", exit_code=1)


def test_bad_connection_option():
    proc = initdb({"DATABASE_URL": pg_url(password=SECRET, query="?sslmode=bogus")})
    assert_clean_failure(proc, "dbinit.E018", exit_code=1)


@pytest.mark.postgresql_only
def test_unknown_role():
    proc = initdb({"DATABASE_URL": pg_url(user="no_such_role", password=SECRET)})
    assert_clean_failure(proc, "dbinit.E011", exit_code=1)
    assert "no_such_role" in proc.stderr


@pytest.mark.postgresql_only
def test_role_that_may_not_create_the_missing_database(fresh_db):
    role = f"dbinit_nocreate_{uuid.uuid4().hex[:8]}"  # per run: parallel runs on one server never share it
    server = fresh_db._server()
    try:
        with server.cursor() as cur:
            cur.execute(f'CREATE ROLE "{role}" LOGIN NOCREATEDB')
        proc = initdb({"DATABASE_URL": pg_url(user=role, name=fresh_db.name)})
        assert_clean_failure(proc, "dbinit.E013", exit_code=1)
        assert "createdb" in proc.stderr.lower()
        assert not fresh_db.exists()
    finally:
        with server.cursor() as cur:
            cur.execute(f'DROP ROLE IF EXISTS "{role}"')
        server.close()


def _forward(listener, target_port, stop):
    """A tiny TCP proxy to the real server: 'the database' that comes up late."""
    listener.settimeout(0.2)
    while not stop.is_set():
        try:
            client, _ = listener.accept()
        except TimeoutError:
            continue
        upstream = socket.create_connection(("127.0.0.1", target_port))
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=_pipe, args=(a, b), daemon=True).start()


def _pipe(src, dst):
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass


@pytest.mark.postgresql_only
def test_database_that_comes_up_within_the_timeout_is_used(fresh_db):
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()

    def come_up_late():
        time.sleep(2.0)
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", port))
        listener.listen()
        _forward(listener, int(postgres_server_url().rsplit(":", 1)[1].split("/")[0]), stop)
        listener.close()

    thread = threading.Thread(target=come_up_late, daemon=True)
    thread.start()
    try:
        proc = initdb({"DATABASE_URL": pg_url(port=port, name=fresh_db.name), "DBINIT_CONNECT_TIMEOUT": "20"},
                      None, "-v", "2")
    finally:
        stop.set()
        thread.join(5)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "retry" in proc.stderr
    assert fresh_db.scalar("SELECT COUNT(*) FROM accounts_user") == 1


@pytest.mark.django_db
def test_wrong_password_is_classified_as_authentication_refused():
    """The local server trusts every connection (pg_hba.conf: trust), so a wrong password cannot be
    provoked here: this feeds libpq's own message for it through the classifier instead."""
    from django.db import OperationalError

    from dbinit.database import classify

    message = (f'connection to server at "db.internal" (10.0.0.5), port 5432 failed: FATAL:  password '
               f'authentication failed for user "app" (dsn postgres://app:{SECRET}@db.internal/app)')
    error, retryable = classify(OperationalError(message), "default", "connect")
    assert (error.code, retryable) == ("dbinit.E011", False)
    assert SECRET not in error.render()  # the driver echoed the DSN: the password is masked
    assert "postgres://app:***@db.internal/app" in error.render()
