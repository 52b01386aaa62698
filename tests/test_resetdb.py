"""resetdb: refused where it must be, backed up first, and the backup really holds the rows."""

import json
import sqlite3
import subprocess
import uuid
from pathlib import Path

import pytest

from tests.support.databases import POPULATED_USERS, ScratchDatabase, manage, postgres_server_url

PRODUCTION = {"AISECRETARY_ENV": "production", "SECRET_KEY": "p" * 50, "DBINIT_ADMIN_PASSWORD": "Str0ng-and-long"}


def resetdb(db, *args, env=None, input=None):
    return manage("resetdb", *args, db=db, env=env, input=input)


def users(db):
    return db.scalar("SELECT COUNT(*) FROM accounts_user")


def test_production_refuses_without_force(populated_db):
    before = populated_db.row_counts()
    proc = resetdb(populated_db, "--noinput", env=PRODUCTION)
    assert proc.returncode == 1
    assert "dbinit.E070" in proc.stderr and "--force" in proc.stderr
    assert "Traceback" not in proc.stderr
    assert populated_db.row_counts() == before


def test_production_force_still_needs_the_typed_name(populated_db):
    before = populated_db.row_counts()
    proc = resetdb(populated_db, "--force", env=PRODUCTION, input="wrong-name\n")
    assert proc.returncode == 1
    assert "Type the database name" in proc.stdout
    assert "dbinit.E071" in proc.stderr
    assert populated_db.row_counts() == before


def test_production_force_with_the_typed_name_resets(populated_db):
    name = str(populated_db.path) if populated_db.engine == "sqlite" else populated_db.name
    proc = resetdb(populated_db, "--force", env=PRODUCTION, input=f"{name}\n")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert users(populated_db) == 1  # only the freshly seeded admin


def test_development_asks_and_no_means_no(populated_db):
    before = populated_db.row_counts()
    proc = resetdb(populated_db, input="no\n")
    assert proc.returncode == 1 and "dbinit.E071" in proc.stderr
    assert populated_db.row_counts() == before


def users_in_backup(engine, backup) -> int:
    """Users in a backup file: the SQLite copy opened as it is, or the pg_dump restored into a scratch database."""
    if engine == "sqlite":
        conn = sqlite3.connect(backup)
        try:
            return conn.execute("SELECT COUNT(*) FROM accounts_user").fetchone()[0]
        finally:
            conn.close()
    restored = ScratchDatabase(engine="postgresql", url="", name=f"dbinit_r_{uuid.uuid4().hex[:10]}",
                               server_url=postgres_server_url())
    restored.create_empty()
    try:
        subprocess.run(["pg_restore", "-h", "127.0.0.1", "-U", "root", "-d", restored.name, backup], check=True,
                       capture_output=True)
        return users(restored)
    finally:
        restored.drop()


def test_development_reset_leaves_a_usable_backup(populated_db):
    proc = resetdb(populated_db, input="yes\n", env={"DBINIT_LOG_LEVEL": "WARNING"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    backup = next(line for line in proc.stdout.splitlines() if line.startswith("Backup: ")).removeprefix("Backup: ")
    # The database was initialised again: seeded, no factory users.
    assert users(populated_db) == 1
    assert populated_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE slug = 'acme'") == 0
    # The backup holds every row the database had.
    assert users_in_backup(populated_db.engine, backup) == POPULATED_USERS + 1


def test_noinput_json_names_the_backup(populated_db, tmp_path):
    folder = tmp_path / "backups"
    proc = resetdb(populated_db, "--noinput", "--format", "json", env={"DBINIT_BACKUP_DIR": str(folder)})
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["initdb"]["status"] == "ok"
    backup = Path(result["backup"])
    assert backup.parent == folder and backup.is_file()
    assert sorted(folder.iterdir()) == [backup]
    assert users_in_backup(populated_db.engine, backup) == POPULATED_USERS + 1
    assert users(populated_db) == 1


@pytest.mark.sqlite_only
def test_sqlite_file_is_moved_never_deleted_even_with_no_backup(populated_db):
    proc = resetdb(populated_db, "--noinput", "--no-backup")
    assert proc.returncode == 0
    assert "never deleted" in proc.stdout
    moved = list((populated_db.path.parent / "backups").glob("db-*-reset.sqlite3"))
    assert len(moved) == 1
    assert sqlite3.connect(moved[0]).execute("SELECT COUNT(*) FROM accounts_user").fetchone()[0] == POPULATED_USERS + 1


@pytest.mark.postgresql_only
def test_postgres_no_backup_skips_pg_dump(populated_db, tmp_path):
    folder = tmp_path / "backups"
    proc = resetdb(populated_db, "--noinput", "--no-backup", env={"DBINIT_BACKUP_DIR": str(folder)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "--no-backup: no backup was taken" in proc.stdout
    assert "Backup:" not in proc.stdout
    assert not folder.exists()  # no dump written, not even the folder
    # The reset happened: the factories' tenant and users are gone, the seed is back.
    assert users(populated_db) == 1
    assert populated_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE slug = 'acme'") == 0
    assert populated_db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE slug = 'system'") == 1
