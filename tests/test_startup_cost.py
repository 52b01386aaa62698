"""dbinit adds no database work to start-up: ready() registers, it does not query."""

import json

from tests.support.databases import manage, python

UNREACHABLE = {"DATABASE_URL": "postgres://nobody:pw@127.0.0.1:1/nowhere", "DBINIT_CONNECT_TIMEOUT": "1"}


def test_django_setup_makes_no_connection_and_no_query(initialized_db):
    proc = python("tests/probes/setup_queries.py", db=initialized_db)
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == {"connect": 0, "cursor": 0}


def test_check_and_help_work_with_an_unreachable_database():
    for args in (("check",), ("help",), ("help", "initdb"), ("check", "--deploy")):
        proc = manage(*args, env=UNREACHABLE)
        assert "Traceback" not in proc.stderr, args
        assert proc.returncode == 0, (args, proc.stderr)


def test_dbhealth_on_an_unreachable_database_names_the_problem():
    proc = manage("dbhealth", "--format", "json", env=UNREACHABLE)
    assert proc.returncode == 1
    data = json.loads(proc.stdout)
    assert [c["id"] for c in data["checks"] if c["status"] == "error"] == ["dbinit.E010"]
    assert "pw" not in json.dumps(data["database"]) and data["database"]["password"] == "***"
    assert "Traceback" not in proc.stderr
