"""Eight real processes initialise the same empty database at once; kill -9 at any point is recoverable."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.databases import ROOT, manage, subprocess_env

pytestmark = pytest.mark.slow
WORKERS = 8


CONTENT_TYPES = "SELECT app_label, model FROM django_content_type"
PERMISSIONS = ("SELECT ct.app_label, ct.model, p.codename FROM auth_permission p "
               "JOIN django_content_type ct ON ct.id = p.content_type_id")
GROUP_PERMISSIONS = ("SELECT g.name, p.codename FROM auth_group_permissions gp "
                     "JOIN auth_group g ON g.id = gp.group_id JOIN auth_permission p ON p.id = gp.permission_id")


def post_migrate_rows(db) -> dict[str, list]:
    """What post-migrate and the seed's role groups leave: content types, permissions, groups' permissions."""
    return {name: sorted(db.query(sql)) for name, sql in
            (("content types", CONTENT_TYPES), ("permissions", PERMISSIONS), ("group permissions", GROUP_PERMISSIONS))}


def assert_initialised_once(db, reference):
    """``db`` holds each seeded row once and exactly the post-migrate rows of ``reference`` (made by one initdb)."""
    assert db.scalar("SELECT COUNT(*) FROM tenants_tenant WHERE slug = 'system'") == 1
    assert db.scalar("SELECT COUNT(*) FROM accounts_role") == 3
    assert db.scalar("SELECT COUNT(*) FROM accounts_user") == 1
    assert db.scalar("SELECT COUNT(*) FROM auth_group") == 2
    assert db.query("SELECT app, name FROM django_migrations GROUP BY app, name HAVING COUNT(*) > 1") == []
    assert db.query("SELECT app_label, model FROM django_content_type GROUP BY app_label, model HAVING COUNT(*) > 1") == []
    expected = post_migrate_rows(reference)
    assert {k: len(v) for k, v in expected.items()} == {"content types": 11, "permissions": 44, "group permissions": 7}
    assert post_migrate_rows(db) == expected
    health = manage("dbhealth", db=db)
    assert health.returncode == 0, health.stdout


def test_eight_processes_initialise_one_empty_database(fresh_db, template_db):
    env = subprocess_env(fresh_db, {"DBINIT_CONNECT_TIMEOUT": "30"})
    procs = [subprocess.Popen([sys.executable, "manage.py", "initdb", "--noinput"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True) for _ in range(WORKERS)]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0] * WORKERS, [err for _, _, err in results]
    outputs = [out for _, out, _ in results]
    # Exactly one process migrated and seeded; the others found it done once they had the lock.
    migrated = [out for out in outputs if "migration(s)" in out]
    assert len(migrated) == 1, outputs
    assert sum("created admin:" in out for out in outputs) == 1, outputs
    if fresh_db.engine == "postgresql":  # the race to CREATE DATABASE had one winner
        assert sum("created database" in out for out in outputs) == 1, outputs
    assert_initialised_once(fresh_db, template_db)


@pytest.mark.parametrize("marker", [
    "  configuration",  # before the database exists
    "Applying contenttypes.0001_initial...",  # early in the migrations
    "Applying accounts.0001_initial...",  # the custom user model's table
    "Applying sessions.0001_initial...",  # the last migration
    "  seed ",  # after seeding, before verification
])
def test_kill_9_at_any_point_leaves_a_state_the_next_initdb_completes(fresh_db, template_db, marker):
    env = subprocess_env(fresh_db)
    proc = subprocess.Popen([sys.executable, "manage.py", "initdb", "--noinput"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    seen = []
    for line in proc.stdout:
        seen.append(line)
        if marker in line:
            os.kill(proc.pid, signal.SIGKILL)
            break
    proc.wait(timeout=60)
    proc.stdout.close()
    assert proc.returncode == -signal.SIGKILL, f"{marker!r} never came: {''.join(seen)}"
    again = manage("initdb", "--noinput", db=fresh_db)
    assert again.returncode == 0, again.stdout + again.stderr
    assert_initialised_once(fresh_db, template_db)


def test_kill_9_inside_post_migrate_is_healed_by_the_next_initdb(fresh_db, template_db):
    """A run killed between its last migration and the end of post-migrate; the next initdb finishes it."""
    dying = manage("initdb", "--noinput", db=fresh_db,
                   env={"DJANGO_SETTINGS_MODULE": "tests.settings.postmigrate_kill", "POSTMIGRATE_KILL": "1"})
    assert dying.returncode == -signal.SIGKILL, dying.stdout + dying.stderr
    # Every migration applied and recorded; post-migrate cut short; no run recorded as finished.
    assert sorted(fresh_db.applied_migrations()) == sorted(template_db.applied_migrations())
    reference = post_migrate_rows(template_db)
    partial = post_migrate_rows(fresh_db)
    assert 0 < len(partial["permissions"]) < len(reference["permissions"])
    assert partial["group permissions"] == []
    assert fresh_db.scalar("SELECT COUNT(*) FROM dbinit_initializationrun") == 0

    again = manage("initdb", "--noinput", db=fresh_db)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "post-migrate handlers run" in again.stdout
    assert_initialised_once(fresh_db, template_db)
    # Every applied migration has its checksum (dbinit's own receiver ran before the death).
    assert fresh_db.scalar("SELECT COUNT(*) FROM dbinit_migrationchecksum") == len(fresh_db.applied_migrations())


def test_lock_held_too_long_ends_in_its_id(fresh_db):
    """Another process keeps the initialisation lock: initdb waits DBINIT_LOCK_TIMEOUT, then E060."""
    import fcntl

    from dbinit.locking import ADVISORY_LOCK_KEY

    fresh_db.create_empty()
    if fresh_db.engine == "sqlite":
        lock_path = fresh_db.path.with_name(fresh_db.path.name + ".dbinit.lock")
        holder = open(lock_path, "w")  # noqa: SIM115 - held across the run below
        fcntl.flock(holder, fcntl.LOCK_EX)
    else:
        holder = fresh_db.connect()
        with holder.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
    try:
        proc = manage("initdb", "--noinput", "--format", "json", db=fresh_db, env={"DBINIT_LOCK_TIMEOUT": "1"})
    finally:
        holder.close()
    assert proc.returncode == 1
    assert "dbinit.E060" in proc.stderr and "(step: lock)" in proc.stderr
    # The lock step itself waited out DBINIT_LOCK_TIMEOUT before giving up.
    lock = next(s for s in json.loads(proc.stdout)["steps"] if s["name"] == "lock")
    assert (lock["status"], lock["error"]["id"]) == ("failed", "dbinit.E060")
    assert lock["duration_ms"] >= 1000
    assert "Traceback" not in proc.stderr
    assert manage("initdb", "--noinput", db=fresh_db).returncode == 0
