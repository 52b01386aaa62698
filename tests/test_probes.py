"""Kubernetes probes (/health/live/, /health/ready/, /health/startup/) and dbhealth --wait, on real databases."""

import json
import subprocess
import sys

import pytest

from tests.support.databases import ROOT, manage, python, subprocess_env

ADMIN = "admin@ai-secretary.com"
ALL_OK = {"database": "ok", "migrations": "ok", "seed": "ok"}


def get(db, path, staff=None, env=None):
    proc = python("tests/probes/get.py", path, *(["--staff", staff] if staff else []), db=db, env=env)
    assert proc.returncode == 0, proc.stderr
    answer = json.loads(proc.stdout)
    return answer["status"], json.loads(answer["body"])


def test_ready_database_answers_200_on_every_probe(initialized_db):
    assert get(initialized_db, "/health/live/") == (200, {"status": "ok"})
    assert get(initialized_db, "/health/ready/") == (200, {"status": "ok", "checks": ALL_OK})
    # DBINIT_STARTUP=off in these subprocesses: there is no step to wait for.
    assert get(initialized_db, "/health/startup/") == (200, {"status": "ok"})


@pytest.mark.parametrize("path", ["/health/live/", "/health/ready/", "/health/startup/"])
def test_probes_answer_head_as_get_and_refuse_writes(initialized_db, path):
    """HAProxy and some load balancers check with HEAD: it was 405 while GET said 200."""
    def call(method):
        proc = python("tests/probes/get.py", path, "--method", method, db=initialized_db)
        assert proc.returncode == 0, proc.stderr
        answer = json.loads(proc.stdout)
        return answer["status"], answer["body"]

    assert call("head") == (200, "")
    assert call("post")[0] == 405


def test_missing_database_is_not_ready_and_live_does_not_touch_it(fresh_db):
    assert get(fresh_db, "/health/live/") == (200, {"status": "ok"})
    status, body = get(fresh_db, "/health/ready/")
    assert (status, body) == (503, {"status": "fail", "checks": {"database": "fail", "migrations": "fail",
                                                                  "seed": "fail"}})
    assert not fresh_db.exists()  # no probe created the file or the database


@pytest.mark.postgresql_only
def test_unreachable_server_is_not_ready_and_says_nothing_to_anonymous_clients(fresh_db):
    fresh_db.url = "postgres://root@127.0.0.1:1/nowhere"
    assert get(fresh_db, "/health/live/") == (200, {"status": "ok"})
    status, body = get(fresh_db, "/health/ready/")
    assert status == 503 and body == {"status": "fail", "checks": {"database": "fail", "migrations": "fail",
                                                                   "seed": "fail"}}


def test_pending_migration_is_not_ready_and_staff_see_why(initialized_db):
    initialized_db.execute("DELETE FROM django_migrations WHERE app = 'sessions'")
    status, body = get(initialized_db, "/health/ready/")
    assert (status, body["checks"]) == (503, {"database": "ok", "migrations": "fail", "seed": "fail"})
    assert "problems" not in body
    status, body = get(initialized_db, "/health/ready/", staff=ADMIN)
    assert status == 503
    assert [(p["id"], p["blocking"]) for p in body["problems"]] == [("dbinit.W020", True)]
    assert "sessions.0001_initial" in body["problems"][0]["message"]


def test_database_ahead_of_this_release_is_ready_with_a_warning(initialized_db):
    """A newer release migrated the database during a rolling deploy: this release keeps serving."""
    initialized_db.execute("INSERT INTO django_migrations (app, name, applied) "
                           "VALUES ('accounts', '9999_from_the_next_release', CURRENT_TIMESTAMP)")
    assert get(initialized_db, "/health/ready/") == (200, {"status": "ok", "checks": ALL_OK})
    status, body = get(initialized_db, "/health/ready/", staff=ADMIN)
    assert status == 200
    assert [(p["id"], p["blocking"]) for p in body["problems"]] == [("dbinit.W063", False)]
    assert "accounts.9999_from_the_next_release" in body["problems"][0]["message"]


def test_missing_reference_rows_are_not_ready(initialized_db):
    initialized_db.execute("UPDATE tenants_tenant SET slug = 'renamed' WHERE slug = 'system'")
    status, body = get(initialized_db, "/health/ready/")
    assert (status, body["checks"]) == (503, {"database": "ok", "migrations": "ok", "seed": "fail"})


def test_dbhealth_wait_gives_up_with_its_id(fresh_db):
    proc = manage("dbhealth", "--wait", "1", db=fresh_db)
    assert proc.returncode == 1
    assert proc.stdout.startswith("attempt 1: not ready: dbinit.E009")
    assert "dbinit.E062 Database not ready" in proc.stderr and "Traceback" not in proc.stderr


@pytest.mark.slow
def test_dbhealth_wait_returns_once_another_process_initialised_the_database(fresh_db):
    """The Kubernetes pattern: the app container waits while a release job runs initdb."""
    waiter = subprocess.Popen([sys.executable, "manage.py", "dbhealth", "--wait", "120"], cwd=ROOT,
                              env=subprocess_env(fresh_db), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        first = waiter.stdout.readline()
        assert first.startswith("attempt 1: not ready"), first
        init = manage("initdb", "--noinput", db=fresh_db)
        assert init.returncode == 0, init.stderr
        out, err = waiter.communicate(timeout=120)
    finally:
        if waiter.poll() is None:
            waiter.kill()
            waiter.communicate()
    assert waiter.returncode == 0, err
    assert out.strip().splitlines()[-1].endswith(": ready")
