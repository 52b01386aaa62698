"""The well-known development password never works in production, and checking for it stays cheap.

A database seeded in development (admin@ai-secretary.com / admin123) then run with
AISECRETARY_ENV=production: start-up refuses in every mode but off, initdb and dbhealth exit
non-zero with dbinit.C003 and the changepassword command, whatever DBINIT_ADMIN_EMAIL says.
"""

import json

import pytest

from tests.support.databases import manage, python
from tests.support.production import production

ADMIN = "admin@ai-secretary.com"


def start_wsgi(db, **env):
    return python("-c", "import aisecretary.wsgi", db=db, env=production(DBINIT_CONNECT_TIMEOUT="2", **env))


def set_password(db, email, password, *flags):
    proc = python("tests/probes/set_password.py", email, password, *flags, db=db)
    assert proc.returncode == 0, proc.stderr


def memo_rows(db):
    return db.scalar("SELECT COUNT(*) FROM dbinit_metadata WHERE key LIKE 'pwcheck:%%'")


@pytest.mark.parametrize("mode", ["check", "init"])
def test_development_seeded_database_does_not_start_in_production(initialized_db, mode):
    proc = start_wsgi(initialized_db, DBINIT_STARTUP=mode)
    assert proc.returncode == 3, proc.stderr
    assert "dbinit.C003" in proc.stderr
    assert f"python manage.py changepassword {ADMIN}" in proc.stderr
    assert "Traceback" not in proc.stderr


def test_startup_off_does_not_check(initialized_db):
    proc = start_wsgi(initialized_db, DBINIT_STARTUP="off")
    assert proc.returncode == 0, proc.stderr


def test_another_admin_email_does_not_hide_the_old_admin(initialized_db):
    proc = start_wsgi(initialized_db, DBINIT_STARTUP="check", DBINIT_ADMIN_EMAIL="ops@example.com")
    assert proc.returncode == 3
    assert "dbinit.C003" in proc.stderr and ADMIN in proc.stderr


def test_any_active_admin_with_the_password_is_found(initialized_db):
    set_password(initialized_db, ADMIN, "Another-long-Pw-42")
    set_password(initialized_db, "second@example.com", "admin123", "--create")
    proc = start_wsgi(initialized_db, DBINIT_STARTUP="check")
    assert proc.returncode == 3
    assert "second@example.com" in proc.stderr and ADMIN not in proc.stderr.split("dbinit.C003")[1]


def test_initdb_and_dbhealth_exit_non_zero_in_production(initialized_db):
    init = manage("initdb", "--noinput", db=initialized_db, env=production())
    assert init.returncode == 1
    assert "dbinit.C003" in init.stderr and f"changepassword {ADMIN}" in init.stderr
    health = manage("dbhealth", "--format", "json", db=initialized_db, env=production())
    assert health.returncode == 1
    found = [c for c in json.loads(health.stdout)["checks"] if c["id"] == "dbinit.C003"]
    assert len(found) == 1 and found[0]["status"] == "critical"
    assert f"changepassword {ADMIN}" in found[0]["hint"]


def test_development_reports_nothing(initialized_db):
    health = manage("dbhealth", "--format", "json", db=initialized_db)
    assert health.returncode == 0
    assert "dbinit.C003" not in health.stdout


def test_after_changepassword_production_starts(initialized_db):
    set_password(initialized_db, ADMIN, "Another-long-Pw-42")
    proc = start_wsgi(initialized_db, DBINIT_STARTUP="check")
    assert proc.returncode == 0, proc.stderr


def test_each_password_hash_is_checked_once_per_deployment(initialized_db):
    set_password(initialized_db, ADMIN, "Another-long-Pw-42")
    assert memo_rows(initialized_db) == 0
    assert start_wsgi(initialized_db, DBINIT_STARTUP="check").returncode == 0
    assert memo_rows(initialized_db) == 1
    row = initialized_db.query("SELECT key, value FROM dbinit_metadata WHERE key LIKE 'pwcheck:%%'")[0]
    stored = initialized_db.scalar("SELECT password FROM accounts_user WHERE email = %s", (ADMIN,))
    # Keyed by a keyed digest of the hash: neither the hash nor any part of it is stored.
    assert stored not in row[0] + row[1] and stored.split("$")[-1] not in row[0] + row[1]
    assert row[1] == "ok"
    # The second worker (and the probe) finds the verdict instead of hashing again: with the
    # verdict forged to "ok" for the well-known hash, nothing is refused, which proves no hash ran.
    set_password(initialized_db, ADMIN, "admin123")
    proc = start_wsgi(initialized_db, DBINIT_STARTUP="check")
    assert proc.returncode == 3  # a new hash value: checked, found
    assert memo_rows(initialized_db) == 1  # the old hash's verdict went (no account has it any more)
    initialized_db.execute("UPDATE dbinit_metadata SET value = 'ok' WHERE value = 'well-known'")
    assert start_wsgi(initialized_db, DBINIT_STARTUP="check").returncode == 0


def test_remembered_verdicts_are_only_those_of_current_password_hashes(initialized_db):
    # Each new password is a new hash value with its own verdict; storing it drops the verdicts
    # of hash values no checked account has any more, so the rows never outnumber the accounts.
    for password in ("First-long-Pw-41", "Second-long-Pw-42", "Third-long-Pw-43"):
        set_password(initialized_db, ADMIN, password)
        assert start_wsgi(initialized_db, DBINIT_STARTUP="check").returncode == 0
        assert memo_rows(initialized_db) == 1
    set_password(initialized_db, "second@example.com", "Second-admin-Pw-7", "--create")
    assert start_wsgi(initialized_db, DBINIT_STARTUP="check").returncode == 0
    assert memo_rows(initialized_db) == 2  # one per admin
    initialized_db.execute("DELETE FROM accounts_user WHERE email = 'second@example.com'")
    set_password(initialized_db, ADMIN, "Fourth-long-Pw-44")
    assert start_wsgi(initialized_db, DBINIT_STARTUP="check").returncode == 0
    assert memo_rows(initialized_db) == 1
    assert initialized_db.scalar("SELECT value FROM dbinit_metadata WHERE key LIKE 'pwcheck:%%'") == "ok"
    # Other Metadata rows are never touched.
    assert initialized_db.scalar("SELECT COUNT(*) FROM dbinit_metadata WHERE key = 'migration_fingerprint'") == 1


def test_probe_reports_the_finding_without_hashing(initialized_db):
    # Start-up recorded the verdict; the probe only reads it.
    assert start_wsgi(initialized_db, DBINIT_STARTUP="check").returncode == 3
    proc = python("tests/probes/health.py", "?format=json", db=initialized_db,
                  env=production(DBINIT_HEALTH_TOKEN="t" * 40, HEALTH_PROBE_TOKEN="t" * 40))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == 500
    assert "dbinit.C003" in result["body"]


@pytest.mark.parametrize("password", ["password", "Admin123", " admin123", "admin123"])
def test_weak_production_admin_passwords_are_refused(fresh_db, password):
    proc = manage("initdb", "--noinput", db=fresh_db, env=production(DBINIT_ADMIN_PASSWORD=password))
    assert proc.returncode == 1
    assert "dbinit.E086" in proc.stderr or "dbinit.E006" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert not fresh_db.exists()  # refused at the configuration step, before anything is created


def test_probe_never_hashes_an_unchecked_password(initialized_db):
    # No start-up ran, so no verdict is remembered: the probe reports what it knows (nothing)
    # rather than spending a PBKDF2 hash per anonymous request. Start-up would refuse first.
    proc = python("tests/probes/health.py", "?format=json", db=initialized_db,
                  env=production(DBINIT_HEALTH_TOKEN="t" * 40, HEALTH_PROBE_TOKEN="t" * 40))
    result = json.loads(proc.stdout)
    assert "dbinit.C003" not in result["body"]
    assert memo_rows(initialized_db) == 0
