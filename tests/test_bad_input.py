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
    ("sqlite:////tmp/dbinit-bad.sqlite3?mode=ro", "dbinit.E018"),  # sqlite3.connect() had raised a TypeError
    ("sqlite:////tmp/dbinit-bad.sqlite3?transaction_mode=sometimes", "dbinit.E018"),  # ImproperlyConfigured
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
    ("DBINIT_TEMPLATE_KEEP", "-1", "dbinit.E005"),
    ("DBINIT_TEMPLATE_KEEP", "three", "dbinit.E005"),
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
        except OSError:  # the test closed the listener: done
            return
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
    """The server comes up only after initdb's first attempt failed (not after a fixed delay, which a
    loaded machine outran): initdb retries, connects and initialises."""
    from tests.support.databases import subprocess_env

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    stop = threading.Event()
    env = subprocess_env(None, {"DATABASE_URL": pg_url(port=port, name=fresh_db.name), "DBINIT_CONNECT_TIMEOUT": "30"})
    proc = subprocess.Popen([sys.executable, "manage.py", "initdb", "--noinput", "-v", "2"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, stdin=subprocess.DEVNULL, text=True)
    stderr = []
    listener = None
    try:
        for line in proc.stderr:  # the warning of the first failed attempt: now the server "comes up"
            stderr.append(line)
            if "retry" in line and listener is None:
                listener = socket.socket()
                listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
                listener.bind(("127.0.0.1", port))
                listener.listen()
                target = int(postgres_server_url().rsplit(":", 1)[1].split("/")[0])
                threading.Thread(target=_forward, args=(listener, target, stop), daemon=True).start()
        stdout = proc.stdout.read()
        proc.wait(timeout=60)
    finally:
        stop.set()
        if proc.poll() is None:
            proc.kill()
            proc.wait()
        if listener is not None:
            listener.close()
    assert listener is not None, "".join(stderr)  # it did retry
    assert proc.returncode == 0, stdout + "".join(stderr)
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


# --- paths that are not files, folders nobody may write, databases that are not ours -----
def _special_file(kind: str, folder) -> tuple:
    """A FIFO, a Unix socket or a character device (a private copy of /dev/null) at ``folder``/db.sqlite3."""
    import os
    import stat

    path = folder / "db.sqlite3"
    if kind == "fifo":
        os.mkfifo(path)
        return path, stat.S_ISFIFO, None
    if kind == "socket":
        sock = socket.socket(socket.AF_UNIX)
        sock.bind(str(path))
        return path, stat.S_ISSOCK, sock
    os.mknod(path, 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    return path, stat.S_ISCHR, None


@pytest.mark.sqlite_only
@pytest.mark.parametrize("kind", ["fifo", "socket", "device"])
@pytest.mark.parametrize("command", [("initdb", "--noinput"), ("dbhealth",), ("dbrepair", "--noinput"),
                                     ("resetdb", "--noinput")])
def test_sqlite_path_that_is_not_a_regular_file_is_refused_and_left_in_place(tmp_path, kind, command):
    """resetdb once moved /dev/null into a backup folder (and made the device 0600)."""
    import os

    path, is_kind, keep = _special_file(kind, tmp_path)
    before = os.lstat(path)
    try:
        proc = manage(*command, env={"DATABASE_URL": f"sqlite:///{path}", "DBINIT_CONNECT_TIMEOUT": "1",
                                     "DBINIT_BACKUP_DIR": str(tmp_path / "backups")}, timeout=60)
        output = proc.stdout + proc.stderr
        assert proc.returncode == 1 and "Traceback" not in output, output
        assert "dbinit.E089" in output and "Point DATABASE_URL at a regular file" in output  # the id and the fix
        after = os.lstat(path)
        assert is_kind(after.st_mode), f"{path} was replaced or moved"
        assert (after.st_ino, after.st_mode) == (before.st_ino, before.st_mode)  # the same node, mode unchanged
        assert not (tmp_path / "backups").exists() or list((tmp_path / "backups").iterdir()) == []
    finally:
        if keep is not None:
            keep.close()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("templates", ["off", "on"])
@pytest.mark.parametrize("command", [("initdb", "--noinput"), ("resetdb", "--noinput")])
def test_sqlite_file_in_a_folder_nobody_may_write(tmp_path, command, templates):
    """/proc exists, but not even root may create a file in it: E016, not the template copy's traceback."""
    env = {"DBINIT_CONNECT_TIMEOUT": "1", "DBINIT_TEMPLATES": templates,
           "DBINIT_TEMPLATE_DIR": str(tmp_path / "templates"), "DBINIT_SNAPSHOT_DIR": str(tmp_path / "none")}
    if templates == "on":  # the template exists: only copying it to the new path can fail
        warm = manage("initdb", "--noinput", env={**env, "DATABASE_URL": f"sqlite:///{tmp_path / 'warm.sqlite3'}"})
        assert warm.returncode == 0 and list((tmp_path / "templates").glob("*.sqlite3")), warm.stderr
    proc = manage(*command, env={**env, "DATABASE_URL": "sqlite:////proc/dbinit-bad-input.sqlite3"}, timeout=60)
    assert_clean_failure(proc, "dbinit.E016", exit_code=1)


@pytest.mark.postgresql_only
@pytest.mark.parametrize("name", ["template1", "template0", "dbinit_tpl_" + "0" * 24])
@pytest.mark.parametrize("command", [("initdb", "--noinput"), ("dbrepair", "--noinput"), ("resetdb", "--noinput")])
def test_postgres_template_databases_are_never_written(name, command):
    """Tables created in template1 would appear in every database created afterwards."""
    server = postgres_server_url()
    before = {row[0]: row[1] for row in _template_tables(server)}
    try:
        proc = manage(*command, env={"DATABASE_URL": pg_url(name=name), "DBINIT_CONNECT_TIMEOUT": "1",
                                     "DBINIT_TEMPLATE_PREFIX": "dbinit_tpl_"}, timeout=60)
        assert_clean_failure(proc, "dbinit.E090")
        assert {row[0]: row[1] for row in _template_tables(server)} == before
    finally:
        after = {row[0]: row[1] for row in _template_tables(server)}
        if after != before:  # a regression wrote into template1: undo it, or every new database inherits it
            _restore_template1(server)


def _template_tables(server):
    from tests.support.databases import server_query, with_database

    return server_query(with_database(server, "template1"),
                        "SELECT 'template1', count(*) FROM pg_tables WHERE schemaname = 'public'")


def _restore_template1(server):
    from tests.support.databases import _pg_connect

    conn = _pg_connect(server, "template1")
    try:
        conn.autocommit = True
        with conn.cursor() as cursor:
            cursor.execute("DROP SCHEMA public CASCADE; CREATE SCHEMA public AUTHORIZATION pg_database_owner; "
                           "GRANT USAGE ON SCHEMA public TO PUBLIC")
    finally:
        conn.close()


@pytest.mark.parametrize("email", ["notanemail", "admin@ai-secretary.com\nroot@evil.example", "@ai-secretary.com",
                                   "a" * 300 + "@ai-secretary.com", "admin@ai secretary.com", "admin\t@x.example"])
def test_admin_email_that_is_not_an_address_is_refused_before_anything_is_written(tmp_path, email):
    """An admin named 'notanemail' was created; an empty one ended in a ValueError traceback."""
    db_file = tmp_path / "db.sqlite3"
    proc = initdb({"DBINIT_ADMIN_EMAIL": email, "DATABASE_URL": f"sqlite:///{db_file}"})
    assert_clean_failure(proc, "dbinit.E005", exit_code=2)
    assert "DBINIT_ADMIN_EMAIL" in proc.stderr
    assert not db_file.exists()


def test_empty_admin_email_means_the_default(tmp_path):
    db_file = tmp_path / "db.sqlite3"
    proc = initdb({"DBINIT_ADMIN_EMAIL": "  ", "DATABASE_URL": f"sqlite:///{db_file}"})
    assert proc.returncode == 0, proc.stderr
    con = sqlite3.connect(db_file)
    try:
        assert con.execute("SELECT email FROM accounts_user").fetchall() == [("admin@ai-secretary.com",)]
    finally:
        con.close()


@pytest.mark.sqlite_only
@pytest.mark.parametrize("backup_dir", ["{file}", "{file}/sub"])
def test_backup_folder_that_cannot_be_a_folder_is_refused_and_nothing_moves(tmp_path, backup_dir):
    """DBINIT_BACKUP_DIR below a regular file ended in a NotADirectoryError traceback."""
    db_file = tmp_path / "db.sqlite3"
    assert initdb({"DATABASE_URL": f"sqlite:///{db_file}"}).returncode == 0
    (tmp_path / "notes.txt").write_text("not a folder\n")
    before = db_file.read_bytes()
    proc = manage("resetdb", "--noinput", env={"DATABASE_URL": f"sqlite:///{db_file}",
                                               "DBINIT_BACKUP_DIR": backup_dir.format(file=tmp_path / "notes.txt")})
    assert_clean_failure(proc, "dbinit.E084", exit_code=1)
    assert db_file.read_bytes() == before and (tmp_path / "notes.txt").read_text() == "not a folder\n"


@pytest.mark.sqlite_only
@pytest.mark.parametrize("command", [("resetdb",), ("resetdb", "--force"), ("dbrepair",)])
def test_prompt_with_stdin_closed_is_not_confirmed(tmp_path, command):
    """A confirmation prompt reading a closed stdin (a cron job, CI without --noinput) ended in an
    EOFError traceback; it is 'not confirmed' (E071), and nothing changes."""
    db_file = tmp_path / "db.sqlite3"
    env = {"DATABASE_URL": f"sqlite:///{db_file}"}
    assert initdb(env).returncode == 0
    con = sqlite3.connect(db_file)
    con.execute("DROP TABLE django_session")  # something for dbrepair to offer
    con.close()
    before = db_file.read_bytes()
    proc = manage(*command, env=env)  # stdin is /dev/null: the prompt reads EOF at once
    assert_clean_failure(proc, "dbinit.E071", exit_code=1)
    assert db_file.read_bytes() == before
    assert not (tmp_path / "backups").exists() or not list((tmp_path / "backups").iterdir())


@pytest.mark.postgresql_only
def test_unix_socket_folder_written_as_the_host(tmp_path):
    """postgres://USER@%2Fvar%2Frun%2Fpostgresql/NAME (dj-database-url's form) was 'host cannot be resolved'."""
    import os

    from tests.support.databases import ScratchDatabase

    folder = "/var/run/postgresql"
    if not os.path.exists(f"{folder}/.s.PGSQL.5432"):
        pytest.skip(f"no PostgreSQL socket in {folder}")
    db = ScratchDatabase.new("postgresql", tmp_path)
    try:
        proc = initdb({"DATABASE_URL": f"postgres://root@%2Fvar%2Frun%2Fpostgresql/{db.name}"})
        assert proc.returncode == 0, proc.stderr
        assert db.scalar("SELECT count(*) FROM accounts_user") == 1
    finally:
        db.drop()
