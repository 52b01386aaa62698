"""A migration that fails is rolled back, named, and the next initdb carries on from it."""

import json

from tests.support.databases import manage

BROKEN = {"DJANGO_SETTINGS_MODULE": "tests.settings.broken"}


def test_failed_migration_is_rolled_back_and_named(fresh_db):
    proc = manage("initdb", "--noinput", "--format", "json", db=fresh_db, env=BROKEN)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    result = json.loads(proc.stdout)
    error = result["error"]
    assert error["id"] == "dbinit.E020"
    assert error["step"] == "migrate"
    assert "brokenapp.0002_gadget_and_failing_data" in error["message"]
    assert "dbinit.E020" in proc.stderr and "brokenapp.0002_gadget_and_failing_data" in proc.stderr
    # The database is as it was before that migration: its table is gone, it is not recorded,
    # and everything before it stayed.
    applied = fresh_db.applied_migrations()
    assert ("brokenapp", "0001_initial") in applied
    assert ("brokenapp", "0002_gadget_and_failing_data") not in applied
    assert "brokenapp_widget" in fresh_db.tables()
    assert "brokenapp_gadget" not in fresh_db.tables()
    # The failed run is in the history with the code.
    assert fresh_db.scalar("SELECT error_code FROM dbinit_initializationrun ORDER BY id DESC") == "dbinit.E020"


def test_next_initdb_after_the_fix_carries_on(fresh_db):
    assert manage("initdb", "--noinput", db=fresh_db, env=BROKEN).returncode == 1
    applied_before = set(fresh_db.applied_migrations())
    proc = manage("initdb", "--noinput", "--format", "json", db=fresh_db, env={**BROKEN, "BROKENAPP_FIXED": "1"})
    assert proc.returncode == 0, proc.stderr
    migrate = json.loads(proc.stdout)["steps"][4]
    assert migrate["detail"]["applied"][0] == "brokenapp.0002_gadget_and_failing_data"
    assert not applied_before & {tuple(a.split(".", 1)) for a in migrate["detail"]["applied"]}
    assert fresh_db.scalar("SELECT name FROM brokenapp_gadget") == "first"
