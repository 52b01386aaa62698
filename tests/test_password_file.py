"""A generated production admin password goes to a 0600 file (its path is printed), not the console.

In a release step stdout ends up in CI logs, journald or `kubectl logs`; --print-password asks
for the console instead.
"""

import json
import os
import stat

import pytest

from tests.support.databases import manage
from tests.support.production import production

ADMIN = "admin@ai-secretary.com"


@pytest.fixture(autouse=True)
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def generated_env(path, **more):
    return production(DBINIT_ADMIN_PASSWORD=None, DBINIT_ADMIN_PASSWORD_FILE=str(path), DBINIT_LOG_LEVEL="DEBUG",
                      **more)


def stored_hash(db):
    return db.scalar("SELECT password FROM accounts_user WHERE email = %s", (ADMIN,))


def test_generated_password_is_written_to_a_private_file(fresh_db, tmp_path):
    target = tmp_path / "secrets" / "admin-password"
    proc = manage("initdb", "--noinput", db=fresh_db, env=generated_env(target))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    password = target.read_text().strip()
    assert len(password) >= 20
    assert stat.S_IMODE(os.stat(target).st_mode) == 0o600
    assert str(target) in proc.stdout
    assert password not in proc.stdout + proc.stderr
    assert stored_hash(fresh_db).startswith("pbkdf2_sha256$") and password not in stored_hash(fresh_db)


def test_json_names_the_file_not_the_password(fresh_db, tmp_path):
    target = tmp_path / "pw.txt"
    proc = manage("initdb", "--noinput", "--format", "json", db=fresh_db, env=generated_env(target))
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)
    assert data["generated_admin_password_file"] == str(target)
    assert "generated_admin_password" not in data
    assert target.read_text().strip() not in proc.stdout


def test_print_password_shows_it_on_the_console_and_writes_no_file(fresh_db, tmp_path):
    target = tmp_path / "pw.txt"
    proc = manage("initdb", "--noinput", "--print-password", db=fresh_db, env=generated_env(target))
    assert proc.returncode == 0, proc.stderr
    line = next(line for line in proc.stdout.splitlines() if "Generated a password" in line)
    password = line.rsplit(": ", 1)[1].strip()
    assert len(password) >= 20 and password not in proc.stderr
    assert not target.exists()


def test_an_existing_file_is_never_overwritten(fresh_db, tmp_path):
    target = tmp_path / "pw.txt"
    target.write_text("someone else's\n")
    proc = manage("initdb", "--noinput", db=fresh_db, env=generated_env(target))
    assert proc.returncode == 1
    assert "dbinit.E088" in proc.stderr and f"changepassword {ADMIN}" in proc.stderr
    assert target.read_text() == "someone else's\n"


def test_a_symlink_is_never_followed(fresh_db, tmp_path):
    victim = tmp_path / "victim"
    victim.write_text("keep\n")
    target = tmp_path / "pw.txt"
    os.symlink(victim, target)
    proc = manage("initdb", "--noinput", db=fresh_db, env=generated_env(target))
    assert proc.returncode == 1 and "dbinit.E088" in proc.stderr
    assert victim.read_text() == "keep\n"


def test_resetdb_writes_the_file_too(initialized_db, tmp_path):
    target = tmp_path / "pw.txt"
    name = str(initialized_db.path) if initialized_db.engine == "sqlite" else initialized_db.name
    proc = manage("resetdb", "--force", db=initialized_db, env=generated_env(target), input=f"{name}\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    password = target.read_text().strip()
    assert password and password not in proc.stdout + proc.stderr
    assert str(target) in proc.stdout
