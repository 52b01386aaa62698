"""Eight real processes initialise the same empty database at once; kill -9 at any point is recoverable."""

import json
import os
import signal
import subprocess
import sys

import pytest

from tests.support.databases import ROOT, manage, python, subprocess_env
from tests.support.locks import lock_held

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


@pytest.mark.parametrize("templates_on", [False, True], ids=["migrating", "from-template"])
def test_waiters_find_the_work_done_without_taking_the_lock_in_turn(fresh_db, template_db, templates, templates_on):
    """Waiters queue in shared mode: the holder's release wakes them all, and none takes the lock
    one after another only to find nothing to do (nor loads the migration graph again)."""
    extra = templates if templates_on else {}
    env = subprocess_env(fresh_db, {"DBINIT_CONNECT_TIMEOUT": "30", **extra})
    procs = [subprocess.Popen([sys.executable, "manage.py", "initdb", "--noinput", "--format", "json"], cwd=ROOT,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(WORKERS)]
    results = [(p.wait(timeout=180), *p.communicate()) for p in procs]
    assert [code for code, _, _ in results] == [0] * WORKERS, [err for _, _, err in results]
    locks = [{s["name"]: s for s in json.loads(out)["steps"]}["lock"] for _, out, _ in results]
    holders = [lock for lock in locks if lock["status"] != "skipped"]
    assert len(holders) == 1, locks  # one process did the work under the exclusive lock
    waiters = [lock for lock in locks if lock["detail"].get("contended")]
    assert all(lock["detail"]["done_by_holder"] for lock in waiters), locks
    assert all(lock["summary"].endswith("another process initialised it") for lock in waiters)
    others = [lock for lock in locks if lock not in holders and lock not in waiters]
    assert all(lock["summary"] == "nothing to do (migration set as last verified)" for lock in others), others
    assert_initialised_once(fresh_db, template_db)


@pytest.mark.parametrize("marker", [
    "  configuration",  # before the database exists
    "Applying contenttypes.0001_initial...",  # early in the migrations
    "Applying accounts.0001_initial...",  # the custom user model's table
    "Applying sessions.0001_initial...",  # the last migration
    "  seed ",  # after seeding, before verification
])
def test_kill_9_at_any_point_leaves_a_state_the_next_initdb_completes(fresh_db, template_db, marker):
    # PostgreSQL: the killed holder's lease lasts 2 s, then the next initdb takes it over.
    env = subprocess_env(fresh_db, {"DBINIT_LOCK_LEASE": "2"})
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
    """Another process keeps the initialisation lock: initdb waits DBINIT_LOCK_TIMEOUT, then E060 naming it."""
    fresh_db.create_empty()
    with lock_held(fresh_db, host="other-host", pid=4242, step="initdb:migrate"):
        proc = manage("initdb", "--noinput", "--format", "json", db=fresh_db, env={"DBINIT_LOCK_TIMEOUT": "1"})
    assert "initdb:migrate on other-host (pid 4242)" in proc.stderr
    assert proc.returncode == 1
    assert "dbinit.E060" in proc.stderr and "(step: lock)" in proc.stderr
    # The lock step itself waited out DBINIT_LOCK_TIMEOUT before giving up.
    lock = next(s for s in json.loads(proc.stdout)["steps"] if s["name"] == "lock")
    assert (lock["status"], lock["error"]["id"]) == ("failed", "dbinit.E060")
    assert lock["duration_ms"] >= 1000
    assert "Traceback" not in proc.stderr
    assert manage("initdb", "--noinput", db=fresh_db).returncode == 0


def test_holder_killed_while_holding_the_lock_is_taken_over_within_the_lease(fresh_db, template_db):
    """kill -9 in the middle of the migrations: the lock's next taker gets it once the lease ran out.

    PostgreSQL: the lease (2 s here) is not renewed by a dead process; the waiter takes it over
    well within its own DBINIT_LOCK_TIMEOUT of 20 s, and says whom from. SQLite: the kernel
    releases the flock with the process.
    """
    env = subprocess_env(fresh_db, {"DBINIT_LOCK_LEASE": "2"})
    holder = subprocess.Popen([sys.executable, "manage.py", "initdb", "--noinput"], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    for line in holder.stdout:
        if "Applying accounts.0001_initial" in line:
            os.kill(holder.pid, signal.SIGKILL)
            break
    holder.wait(timeout=60)
    holder.stdout.close()
    assert holder.returncode == -signal.SIGKILL
    if fresh_db.engine == "postgresql":
        assert fresh_db.query("SELECT pid, step FROM dbinit_lease") == [(holder.pid, "initdb:migrate")]
    taker = manage("initdb", "--noinput", db=fresh_db,
                   env={"DBINIT_LOCK_TIMEOUT": "20", "DBINIT_LOG_LEVEL": "INFO"})
    assert taker.returncode == 0, taker.stdout + taker.stderr
    if fresh_db.engine == "postgresql":
        assert "Took over the initialisation lock from initdb:migrate on " in taker.stderr
        assert f"(pid {holder.pid})" in taker.stderr
        assert fresh_db.query("SELECT pid FROM dbinit_lease") == []
    assert_initialised_once(fresh_db, template_db)


def test_a_waiter_loads_no_migration_graph_while_another_process_holds_the_lock(fresh_db):
    """A database that exists but still needs work, its lock held by another process: initdb waits for
    the holder without planning first. Of 32 workers starting together, the ones that find the
    database already created used to load the whole migration graph (every migration module) only to
    wait, then find the holder's work done."""
    fresh_db.create_empty()
    with lock_held(fresh_db, host="other-host", pid=4242, step="initdb:migrate"):
        proc = python("tests/probes/startup_queries.py", "initdb", "--noinput", db=fresh_db,
                      env={"DBINIT_LOCK_TIMEOUT": "1"})
    assert proc.returncode == 0, proc.stderr
    waited = json.loads(proc.stdout)
    assert waited["exit"] == 1
    assert "dbinit.E060" in proc.stderr and "initdb:migrate on other-host (pid 4242)" in proc.stderr
    assert waited["migration_modules"] == 0
    assert fresh_db.tables() <= {"dbinit_lease"}  # nothing migrated: the lock's own table at most
    # The lock free, the same command plans, loads every migration and initialises the database.
    proc = python("tests/probes/startup_queries.py", "initdb", "--noinput", db=fresh_db)
    assert proc.returncode == 0, proc.stderr
    done = json.loads(proc.stdout)
    assert done["exit"] == 0
    assert done["migration_modules"] == len(fresh_db.applied_migrations()) > 0
