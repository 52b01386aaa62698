"""gunicorn with the project's gunicorn.conf.py: start-up once in the arbiter, clean failures, no orphans."""

import json
import sys

import pytest

from tests.support.servers import (
    free_port,
    get,
    kill_group,
    port_is_free,
    start,
    stop,
    wait_for_http,
    wait_until_gone,
)

pytestmark = pytest.mark.slow


def gunicorn(*args):
    return [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", *args]


def serve_and_check(db, workers, env=None, requests=8):
    """Start gunicorn in init mode, ask /health/ ``requests`` times, stop it; return its stderr."""
    port = free_port()
    proc = start(gunicorn("-w", str(workers), "-b", f"127.0.0.1:{port}", "--timeout", "120"), db,
                 {"DBINIT_STARTUP": "init", "DBINIT_CONNECT_TIMEOUT": "30", **(env or {})})
    try:
        assert wait_for_http(f"http://127.0.0.1:{port}/health/live/", proc, timeout=120) == 200
        for _ in range(requests):
            status, body = get(f"http://127.0.0.1:{port}/health/?format=json", timeout=30)
            assert status == 200, body
            # Anonymous: the status and each check's name with ok/fail, nothing else (dbinit.access).
            assert json.loads(body) == {"status": "ok", "checks": {
                "dbinit:configuration": "ok", "dbinit:database": "ok", "dbinit:migrations": "ok", "dbinit:seed": "ok"}}
    finally:
        out, err = stop(proc)
        left = wait_until_gone(proc.pid)
        kill_group(proc.pid)
    assert left == []
    assert port_is_free(port)
    return err


def test_start_up_runs_once_in_the_arbiter_before_the_workers_fork(fresh_db):
    err = serve_and_check(fresh_db, workers=4)
    assert err.count("Start-up (gunicorn, DBINIT_STARTUP=init) ready") == 1, err
    assert "Start-up (wsgi" not in err  # the workers inherited "done" and skipped it
    assert fresh_db.query("SELECT trigger, outcome FROM dbinit_initializationrun") == [("startup:gunicorn", "ok")]
    assert fresh_db.scalar("SELECT COUNT(*) FROM accounts_user") == 1


def test_failing_start_up_stops_the_server_before_any_worker_exists(initialized_db):
    initialized_db.drop_table("django_session")
    port = free_port()
    proc = start(gunicorn("-w", "4", "-b", f"127.0.0.1:{port}"), initialized_db, {"DBINIT_STARTUP": "check"})
    try:
        code = proc.wait(timeout=90)
        left = wait_until_gone(proc.pid)
    finally:
        kill_group(proc.pid)
    out, err = proc.communicate()
    assert code == 3, err
    assert err.count("dbinit.C002 Start-up check failed") == 1, err
    assert "dbinit.E030" in err
    assert "Booting worker" not in err and "Traceback" not in err
    assert left == [] and port_is_free(port)


def test_four_failing_workers_leave_no_process_and_free_the_port(tmp_path):
    """Workers failing to boot at different moments: gunicorn 27's arbiter exits inside its own halt."""
    port = free_port()
    proc = start(gunicorn("tests.probes.failing_wsgi:application", "-w", "4", "-b", f"127.0.0.1:{port}"), None,
                 {"PROBE_FOLDER": str(tmp_path)})
    try:
        code = proc.wait(timeout=90)
        # Workers 2 and 3 would sleep 120 s: anything left after 20 s is an orphan.
        left = wait_until_gone(proc.pid, timeout=20)
    finally:
        kill_group(proc.pid)
    out, err = proc.communicate()
    assert code != 0
    assert "Worker failed to boot" in err
    assert sorted(p.name for p in tmp_path.glob("pid-*")) == ["pid-0", "pid-1", "pid-2", "pid-3"]
    assert left == []
    assert port_is_free(port)


@pytest.mark.postgresql_only
def test_eight_workers_through_pgbouncer(pgbouncer, existing_db):
    err = serve_and_check(pgbouncer.via(existing_db), workers=8, requests=16)
    assert err.count("Start-up (gunicorn, DBINIT_STARTUP=init) ready") == 1, err
    assert existing_db.scalar("SELECT COUNT(*) FROM accounts_user") == 1
    assert existing_db.scalar("SELECT COUNT(*) FROM accounts_role") == 3
    assert existing_db.scalar("SELECT COUNT(*) FROM django_migrations") == existing_db.scalar(
        "SELECT COUNT(DISTINCT (app, name)) FROM django_migrations")
    assert existing_db.query("SELECT host FROM dbinit_lease") == []
