"""/health/ tells anonymous clients only the status and which checks failed; details need staff or a token.

The database is damaged for real (a dropped table), then the endpoint is asked three ways.
"""

import json

import pytest

from tests.support.databases import python

TOKEN = "h3alth-" + "x" * 40
DETAIL_FRAGMENTS = ["dbinit.E030", "django_admin_log", "Table(s)", "dbrepair"]


def get_health(db, *, token=None, login=None, accept="application/json", query="", env=None):
    extra = {"DBINIT_HEALTH_TOKEN": TOKEN, "HEALTH_PROBE_ACCEPT": accept, **(env or {})}
    if token:
        extra["HEALTH_PROBE_TOKEN"] = token
    if login:
        extra["HEALTH_PROBE_LOGIN"] = login
    proc = python("tests/probes/health.py", query, db=db, env=extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture
def broken_db(initialized_db):
    initialized_db.drop_table("django_admin_log")
    return initialized_db


@pytest.mark.parametrize("accept, query", [("application/json", ""), ("text/html", ""), ("*/*", "?format=json"),
                                           ("text/plain", "")])
def test_anonymous_sees_only_status_and_check_names(broken_db, accept, query):
    result = get_health(broken_db, accept=accept, query=query)
    assert result["status"] == 500
    body = result["body"]
    for fragment in DETAIL_FRAGMENTS:
        assert fragment not in body, body
    if accept == "application/json" or query:
        data = json.loads(body)
        assert data == {"status": "fail", "checks": {"dbinit:configuration": "ok", "dbinit:database": "ok",
                                                     "dbinit:migrations": "fail", "dbinit:seed": "ok"}}
    else:
        assert "dbinit:migrations: fail" in body and "dbinit:database: ok" in body


def test_a_wrong_token_is_anonymous(broken_db):
    body = get_health(broken_db, token=TOKEN[:-1] + "y")["body"]
    assert "dbinit.E030" not in body
    assert json.loads(body)["status"] == "fail"


def test_the_token_shows_the_details(broken_db):
    result = get_health(broken_db, token=TOKEN)
    assert result["status"] == 500
    assert "dbinit.E030" in result["body"] and "django_admin_log" in result["body"]


def test_no_token_configured_means_no_token_access(broken_db):
    body = get_health(broken_db, token=TOKEN, env={"DBINIT_HEALTH_TOKEN": None})["body"]
    assert "dbinit.E030" not in body


def test_staff_users_see_the_details(broken_db):
    result = get_health(broken_db, login="admin@ai-secretary.com")
    assert result["status"] == 500
    assert "dbinit.E030" in result["body"]


def test_healthy_database_anonymous(initialized_db):
    result = get_health(initialized_db)
    assert result["status"] == 200
    assert json.loads(result["body"])["status"] == "ok"
