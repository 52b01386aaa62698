"""Files only their owner can read: databases, lock files, backups and backup folders.

Under the usual umask 022 everything dbinit (or a plain `migrate`) creates is 0600 (folders
0700); lock files are never written through a planted symbolic link, and a backup folder
owned by someone else or writable by others is refused.
"""

import json
import os
import stat

import pytest

from tests.support.databases import manage

OTHER_UID = 65534  # nobody


@pytest.fixture(autouse=True)
def umask_022():
    previous = os.umask(0o022)
    yield
    os.umask(previous)


def mode(path):
    return stat.S_IMODE(os.lstat(path).st_mode)


def backup_line(output):
    return next(line for line in output.splitlines() if line.startswith(("Backup written to ", "Backup: ")))


@pytest.mark.sqlite_only
def test_initdb_creates_a_private_database_and_lock_file(fresh_db):
    proc = manage("initdb", "--noinput", db=fresh_db)
    assert proc.returncode == 0, proc.stderr
    assert mode(fresh_db.path) == 0o600
    assert mode(f"{fresh_db.path}.dbinit.lock") == 0o600


@pytest.mark.sqlite_only
def test_plain_migrate_creates_a_private_database(fresh_db):
    fresh_db.path.parent.mkdir(parents=True)
    proc = manage("migrate", "--noinput", db=fresh_db)
    assert proc.returncode == 0, proc.stderr
    assert mode(fresh_db.path) == 0o600


@pytest.mark.sqlite_only
def test_existing_readable_database_is_made_private(initialized_db):
    os.chmod(initialized_db.path, 0o644)
    assert manage("dbhealth", db=initialized_db).returncode == 0
    assert mode(initialized_db.path) == 0o600


@pytest.mark.sqlite_only
def test_wal_files_are_private(initialized_db):
    initialized_db.execute("PRAGMA journal_mode=WAL")
    os.remove(f"{initialized_db.path}-wal") if os.path.exists(f"{initialized_db.path}-wal") else None
    proc = manage("initdb", "--noinput", db=initialized_db)
    assert proc.returncode == 0, proc.stderr
    conn = initialized_db.connect()
    conn.execute("CREATE TABLE t (x)")
    for side in ("-wal", "-shm"):
        assert mode(f"{initialized_db.path}{side}") == 0o600, side
    conn.close()


@pytest.mark.sqlite_only
def test_repair_backup_and_folder_are_private(initialized_db):
    initialized_db.drop_table("django_admin_log")
    proc = manage("dbrepair", "--noinput", db=initialized_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    backup = backup_line(proc.stdout).removeprefix("Backup written to ").strip()
    assert mode(backup) == 0o600
    assert mode(os.path.dirname(backup)) == 0o700


@pytest.mark.sqlite_only
def test_resetdb_moved_file_is_private(initialized_db):
    os.chmod(initialized_db.path, 0o644)  # made by an older version
    proc = manage("resetdb", "--noinput", db=initialized_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    backup = backup_line(proc.stdout).removeprefix("Backup: ").strip()
    assert mode(backup) == 0o600
    assert mode(os.path.dirname(backup)) == 0o700


@pytest.mark.postgresql_only
def test_pg_dump_backup_is_private(initialized_db, tmp_path):
    folder = tmp_path / "pgbackups"
    proc = manage("resetdb", "--noinput", db=initialized_db, env={"DBINIT_BACKUP_DIR": str(folder)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    backup = backup_line(proc.stdout).removeprefix("Backup: ").strip()
    assert backup.endswith(".dump") and os.path.getsize(backup) > 0
    assert mode(backup) == 0o600 and mode(folder) == 0o700


@pytest.mark.sqlite_only
def test_planted_symlink_lock_file_is_refused(fresh_db, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    fresh_db.path.parent.mkdir(parents=True)
    os.symlink(victim, f"{fresh_db.path}.dbinit.lock")
    proc = manage("initdb", "--noinput", db=fresh_db)
    assert proc.returncode == 1
    assert "dbinit.E087" in proc.stderr and "Traceback" not in proc.stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.sqlite_only
def test_hard_linked_lock_file_is_refused(fresh_db, tmp_path):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious\n")
    fresh_db.path.parent.mkdir(parents=True)
    os.link(victim, f"{fresh_db.path}.dbinit.lock")
    proc = manage("initdb", "--noinput", db=fresh_db)
    assert proc.returncode == 1 and "dbinit.E087" in proc.stderr
    assert victim.read_text() == "precious\n"


@pytest.mark.sqlite_only
def test_health_does_not_read_through_a_symlinked_lock_file(initialized_db, tmp_path):
    victim = tmp_path / "secret.txt"
    victim.write_text("TOP-SECRET-CONTENT\n")
    os.symlink(victim, f"{initialized_db.path}.dbinit.lock")
    proc = manage("dbhealth", "--format", "json", "--check", "lock", db=initialized_db)
    assert "TOP-SECRET-CONTENT" not in proc.stdout + proc.stderr
    assert "dbinit.E087" in {c["id"] for c in json.loads(proc.stdout)["checks"]}


@pytest.mark.parametrize("problem", ["other-owner", "world-writable", "group-writable"])
def test_unsafe_backup_folder_is_refused(initialized_db, tmp_path, problem):
    folder = tmp_path / "shared-backups"
    folder.mkdir(mode=0o700)
    if problem == "other-owner":
        os.chown(folder, OTHER_UID, OTHER_UID)
    else:
        os.chmod(folder, 0o777 if problem == "world-writable" else 0o770)
    initialized_db.drop_table("django_admin_log")
    command = ["dbrepair", "--noinput"] if initialized_db.engine == "sqlite" else ["resetdb", "--noinput"]
    proc = manage(*command, db=initialized_db, env={"DBINIT_BACKUP_DIR": str(folder)})
    assert proc.returncode == 1
    assert "dbinit.E084" in proc.stderr + proc.stdout and "Traceback" not in proc.stderr
    assert list(folder.iterdir()) == []
    assert "django_admin_log" not in initialized_db.tables()  # nothing was changed


def test_backup_folder_is_created_private(initialized_db, tmp_path):
    folder = tmp_path / "new" / "backups"
    initialized_db.drop_table("django_admin_log")
    command = ["dbrepair", "--noinput"] if initialized_db.engine == "sqlite" else ["resetdb", "--noinput"]
    proc = manage(*command, db=initialized_db, env={"DBINIT_BACKUP_DIR": str(folder)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert mode(folder) == 0o700
    assert all(mode(f) == 0o600 for f in folder.iterdir())
