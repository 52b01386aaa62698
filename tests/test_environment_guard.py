"""The database remembers its environment; destructive commands from another one refuse.

A development shell pointed at the production DATABASE_URL must not drop, reset or re-seed
the production database: resetdb and dbrepair read the environment the database records
(dbinit_metadata, written by initdb) and refuse unless --force and the typed name.
"""

import json

import pytest

from tests.support.databases import manage, python
from tests.support.production import production


def mark(db, environment):
    db.execute("DELETE FROM dbinit_metadata WHERE key = 'environment'")
    db.execute(f"INSERT INTO dbinit_metadata (key, value, updated_at) VALUES ('environment', '{environment}', "
               "CURRENT_TIMESTAMP)")


def recorded(db):
    return db.scalar("SELECT value FROM dbinit_metadata WHERE key = 'environment'")


def db_name(db):
    return str(db.path) if db.engine == "sqlite" else db.name


def test_initdb_records_its_environment(fresh_db):
    assert manage("initdb", "--noinput", db=fresh_db).returncode == 0
    assert recorded(fresh_db) == "development"


def test_production_initdb_promotes_and_development_never_demotes(initialized_db):
    proc = python("tests/probes/set_password.py", "admin@ai-secretary.com", "Another-long-Pw-42", db=initialized_db)
    assert proc.returncode == 0
    proc = manage("initdb", "--noinput", db=initialized_db, env=production())
    assert proc.returncode == 0, proc.stderr
    assert recorded(initialized_db) == "production"
    proc = manage("initdb", "--noinput", db=initialized_db)
    assert proc.returncode == 0, proc.stderr
    assert "dbinit.W080" in proc.stdout
    assert recorded(initialized_db) == "production"


def test_dbhealth_shows_the_environment(initialized_db):
    data = json.loads(manage("dbhealth", "--format", "json", db=initialized_db).stdout)
    shown = [c for c in data["checks"] if c["check"] == "environment"]
    assert [(c["id"], c["status"]) for c in shown] == [("dbinit.I011", "ok")]
    assert "development" in shown[0]["message"]
    mark(initialized_db, "production")
    data = json.loads(manage("dbhealth", "--format", "json", db=initialized_db).stdout)
    shown = [c for c in data["checks"] if c["check"] == "environment"]
    assert [(c["id"], c["status"]) for c in shown] == [("dbinit.W080", "warning")]


def test_resetdb_from_development_refuses_a_production_database(populated_db):
    mark(populated_db, "production")
    before = populated_db.row_counts()
    for args in (["--noinput"], ["--noinput", "--force"]):
        proc = manage("resetdb", *args, db=populated_db)
        assert proc.returncode == 1, proc.stdout
        assert "dbinit.E085" in proc.stderr and "Traceback" not in proc.stderr
    proc = manage("resetdb", "--force", db=populated_db, input="yes\n")
    assert proc.returncode == 1 and "dbinit.E071" in proc.stderr
    assert populated_db.row_counts() == before


@pytest.mark.parametrize("damaged", ["Production", "production\n", " production", "staging", ""])
def test_an_environment_record_dbinit_does_not_know_counts_as_production(initialized_db, damaged):
    """A record other than exactly development or testing (edited by hand, damaged) once let
    resetdb drop the database from a development shell: an unknown record protects, as production does."""
    initialized_db.execute("DELETE FROM dbinit_metadata WHERE key = 'environment'")
    initialized_db.query("INSERT INTO dbinit_metadata (key, value, updated_at) VALUES ('environment', %s, "
                         "CURRENT_TIMESTAMP)", [damaged])
    before = initialized_db.row_counts()
    for command in (["resetdb", "--noinput"], ["dbrepair", "--noinput"]):
        proc = manage(*command, db=initialized_db)
        assert proc.returncode == 1 and "dbinit.E085" in proc.stderr, proc.stdout + proc.stderr
    assert initialized_db.row_counts() == before  # refused: nothing written
    assert manage("initdb", "--noinput", db=initialized_db).returncode == 0
    assert recorded(initialized_db) == damaged  # never lowered to development
    assert initialized_db.row_counts() == {**before, "dbinit_initializationrun": before["dbinit_initializationrun"] + 1}


def test_resetdb_with_force_and_the_typed_name_proceeds(populated_db):
    mark(populated_db, "production")
    proc = manage("resetdb", "--force", db=populated_db, input=f"{db_name(populated_db)}\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert recorded(populated_db) == "development"  # a new database, initialised here


def test_dbrepair_from_development_refuses_a_production_database(initialized_db):
    mark(initialized_db, "production")
    initialized_db.execute("DELETE FROM accounts_user")  # dbrepair would re-seed admin123
    dry = manage("dbrepair", "--dry-run", db=initialized_db)
    assert "reseed" in dry.stdout  # looking is allowed
    proc = manage("dbrepair", "--noinput", db=initialized_db)
    assert proc.returncode == 1
    assert "dbinit.E085" in proc.stderr
    assert initialized_db.scalar("SELECT COUNT(*) FROM accounts_user") == 0


def test_development_initdb_does_not_seed_the_well_known_password_into_production(initialized_db):
    mark(initialized_db, "production")
    initialized_db.execute("DELETE FROM accounts_user")
    proc = manage("initdb", "--noinput", db=initialized_db)
    assert proc.returncode == 1
    assert "dbinit.E006" in proc.stderr
    assert initialized_db.scalar("SELECT COUNT(*) FROM accounts_user") == 0
