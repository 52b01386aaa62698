"""Checksums are of a migration file's content: the stored digest is the file's sha256, and an edit is caught.

The migrations come from a temporary copy of ``tests/apps/checksumapp/migrations`` (the
settings module ``tests.settings.checksum``), so a test can edit an applied migration on
disk as a developer would, without touching the repository.
"""

import hashlib
import json
import shutil

from dbinit.migrations_state import file_checksum
from tests.support.databases import ROOT, manage


def test_file_checksum_is_the_sha256_of_the_bytes(tmp_path):
    path = tmp_path / "0001_initial.py"
    path.write_bytes(b"from django.db import migrations\n")
    first = file_checksum(path)
    assert first == hashlib.sha256(b"from django.db import migrations\n").hexdigest()
    # Same path, other content: another digest (a digest of the path would not change).
    path.write_bytes(b"from django.db import migrations  # edited\n")
    assert file_checksum(path) == hashlib.sha256(b"from django.db import migrations  # edited\n").hexdigest()
    assert file_checksum(path) != first
    assert file_checksum(tmp_path / "missing.py") is None


def migrations_copy(tmp_path):
    copy = tmp_path / "checksumapp_migrations"
    shutil.copytree(ROOT / "tests" / "apps" / "checksumapp" / "migrations", copy,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return copy, {"DJANGO_SETTINGS_MODULE": "tests.settings.checksum", "CHECKSUMAPP_MIGRATIONS": str(copy)}


def health_json(db, env, *args):
    proc = manage("dbhealth", "--format", "json", *args, db=db, env=env)
    return proc, json.loads(proc.stdout)


def test_editing_an_applied_migration_file_is_reported(fresh_db, tmp_path):
    copy, env = migrations_copy(tmp_path)
    init = manage("initdb", "--noinput", db=fresh_db, env=env)
    assert init.returncode == 0, init.stdout + init.stderr
    migration = copy / "0001_initial.py"
    stored = fresh_db.query("SELECT checksum FROM dbinit_migrationchecksum WHERE app = 'checksumapp'")
    assert stored == [(hashlib.sha256(migration.read_bytes()).hexdigest(),)]

    proc, data = health_json(fresh_db, env)
    assert proc.returncode == 0 and data["status"] == "ok", data
    assert [c["id"] for c in data["checks"] if c["check"] == "checksums"] == ["dbinit.I008"]

    with migration.open("a") as fh:
        fh.write("# edited after it was applied\n")
    proc, data = health_json(fresh_db, env)
    checksums = [c for c in data["checks"] if c["check"] == "checksums"]
    assert [(c["id"], c["status"], c["message"]) for c in checksums] == [
        ("dbinit.W023", "warning", "Migration file(s) changed since they were applied: checksumapp.0001_initial.")]
    assert data["status"] == "warning"
    assert proc.returncode == 0  # a warning; --fail-level WARNING makes it fail, as in manage.py check
    failing = manage("dbhealth", "--fail-level", "WARNING", db=fresh_db, env=env)
    assert failing.returncode == 1
    assert "dbinit.W023" in failing.stdout and "checksumapp.0001_initial" in failing.stdout
