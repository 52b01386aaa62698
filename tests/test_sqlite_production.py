"""SQLite fit for production (issue 14): WAL set by initdb, immediate transactions, a busy
timeout, synchronous=NORMAL; dbhealth's view of them; backups, resetdb and dbrepair with a WAL
holding committed rows; several real processes writing at once."""

from __future__ import annotations

import json
import sqlite3
import subprocess
import sys

import pytest

from tests.support.databases import ROOT, manage, python, subprocess_env

pytestmark = pytest.mark.sqlite_only

PRODUCTION = {"AISECRETARY_ENV": "production", "SECRET_KEY": "x" * 50, "DBINIT_ADMIN_PASSWORD": "a-Strong-pass-42"}
BENCH_KEY = "bench.counter"


def journal_mode(path) -> str:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("PRAGMA journal_mode").fetchone()[0]
    finally:
        conn.close()


def engine_finding(db, env=None) -> tuple[dict, subprocess.CompletedProcess]:
    proc = manage("dbhealth", "--format", "json", "--check", "engine", db=db, env=env)
    report = json.loads(proc.stdout)
    return report, proc


def crash_with_wal_rows(db, rows: int):
    """A process writes ``rows`` metadata rows in WAL mode and is killed before any checkpoint:
    the rows are committed, and only in the -wal file (as after a crashed server)."""
    script = (
        "import os, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA wal_autocheckpoint=0')\n"
        "for i in range(int(sys.argv[2])):\n"
        "    conn.execute(\"INSERT INTO dbinit_metadata (key, value, updated_at) VALUES (?, '1', datetime('now'))\", "
        "(f'wal.{i}',))\n"
        "os._exit(0)  # no close: no checkpoint, the -wal stays\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(db.path), str(rows)], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    wal = db.path.with_name(db.path.name + "-wal")
    assert wal.exists() and wal.stat().st_size > 0
    return wal


def wal_rows(path) -> int:
    conn = sqlite3.connect(path)
    try:
        return conn.execute("SELECT COUNT(*) FROM dbinit_metadata WHERE key LIKE 'wal.%'").fetchone()[0]
    finally:
        conn.close()


# --- the settings --------------------------------------------------------------------
def test_initdb_makes_the_file_wal_for_every_later_connection(fresh_db):
    proc = manage("initdb", "--noinput", "--format", "json", db=fresh_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    connect = next(s for s in json.loads(proc.stdout)["steps"] if s["name"] == "connect")
    assert connect["detail"]["journal_mode"] == "wal"
    # Persistent: a plain sqlite3 connection that knows nothing of the settings sees it.
    assert journal_mode(fresh_db.path) == "wal"


def test_journal_mode_setting_keeps_the_rollback_journal(fresh_db):
    proc = manage("initdb", "--noinput", db=fresh_db, env={"DBINIT_SQLITE_JOURNAL_MODE": "delete"})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert journal_mode(fresh_db.path) == "delete"


def test_engine_check_reports_the_settings_in_force(initialized_db):
    report, proc = engine_finding(initialized_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [finding] = report["checks"][1:]
    assert finding["id"] == "dbinit.I002"
    assert finding["message"].startswith("sqlite: journal mode wal, synchronous NORMAL, transactions IMMEDIATE, "
                                         "busy timeout 5 s, foreign keys on, quick_check ok")


def test_each_connection_setting_is_overridable(initialized_db):
    env = {"DBINIT_SQLITE_TRANSACTION_MODE": "exclusive", "DBINIT_SQLITE_SYNCHRONOUS": "full",
           "DBINIT_SQLITE_BUSY_TIMEOUT": "12"}
    report, _ = engine_finding(initialized_db, env)
    assert "synchronous FULL, transactions EXCLUSIVE, busy timeout 12 s" in report["checks"][1]["message"]


@pytest.mark.parametrize("variable", ["DBINIT_SQLITE_JOURNAL_MODE", "DBINIT_SQLITE_TRANSACTION_MODE",
                                      "DBINIT_SQLITE_SYNCHRONOUS", "DBINIT_SQLITE_BUSY_TIMEOUT"])
def test_a_bad_value_is_refused_with_its_id(initialized_db, variable):
    proc = manage("dbhealth", db=initialized_db, env={variable: "sometimes"})
    assert proc.returncode == 2
    assert "dbinit.E005" in proc.stderr and variable in proc.stderr
    assert "Traceback" not in proc.stderr


# --- dbhealth in production ------------------------------------------------------------
def test_production_warns_about_a_rollback_journal_and_deferred_writers(initialized_db):
    initialized_db.execute("PRAGMA journal_mode=delete")
    env = {**PRODUCTION, "DBINIT_SQLITE_TRANSACTION_MODE": "deferred"}
    report, proc = engine_finding(initialized_db, env)
    ids = [c["id"] for c in report["checks"] if c["check"] == "engine"]
    assert ids == ["dbinit.I002", "dbinit.W052", "dbinit.W053"]
    w052 = next(c for c in report["checks"] if c["id"] == "dbinit.W052")
    assert "journal mode delete" in w052["message"] and "initdb" in w052["hint"]
    assert "DEFERRED" in next(c for c in report["checks"] if c["id"] == "dbinit.W053")["message"]
    proc = manage("dbhealth", "--check", "engine", "--fail-level", "WARNING", db=initialized_db, env=env)
    assert proc.returncode == 1 and "dbinit.W052, dbinit.W053" in proc.stderr
    # The fix the hint names: initdb switches the file to WAL; the defaults start immediate.
    assert manage("initdb", "--noinput", db=initialized_db, env=PRODUCTION).returncode == 0
    proc = manage("dbhealth", "--check", "engine", "--fail-level", "WARNING", db=initialized_db, env=PRODUCTION)
    assert proc.returncode == 0, proc.stdout + proc.stderr


def test_development_does_not_warn_about_the_journal(initialized_db):
    initialized_db.execute("PRAGMA journal_mode=delete")
    report, proc = engine_finding(initialized_db, {"DBINIT_SQLITE_TRANSACTION_MODE": "deferred"})
    assert [c["id"] for c in report["checks"] if c["check"] == "engine"] == ["dbinit.I002"]


# --- files: backups, resetdb, dbrepair ----------------------------------------------------
def test_backup_of_a_database_whose_rows_are_only_in_the_wal_holds_them(initialized_db, tmp_path):
    crash_with_wal_rows(initialized_db, 40)
    proc = python("-c", "import django; django.setup(); from django.db import connections; "
                        "from dbinit.backup import backup_sqlite; print(backup_sqlite(connections['default'], 'test'))",
                  db=initialized_db, env={"DJANGO_SETTINGS_MODULE": "aisecretary.settings",
                                          "DBINIT_BACKUP_DIR": str(tmp_path / "bk")})
    assert proc.returncode == 0, proc.stderr
    backup = proc.stdout.strip().splitlines()[-1]
    assert not (tmp_path / "bk" / (backup.rsplit("/", 1)[1] + "-wal")).exists()
    assert wal_rows(backup) == 40


def test_resetdb_moves_the_wal_with_the_file_and_leaves_no_stale_one(initialized_db, tmp_path):
    crash_with_wal_rows(initialized_db, 25)
    backups = tmp_path / "bk"
    proc = manage("resetdb", "--noinput", db=initialized_db, env={"DBINIT_BACKUP_DIR": str(backups)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    [moved] = backups.glob("*.sqlite3")
    assert wal_rows(moved) == 25  # every committed row went with the file
    assert wal_rows(initialized_db.path) == 0  # the new database starts empty of them
    for side in ("-wal", "-shm", "-journal"):
        assert not initialized_db.path.with_name(initialized_db.path.name + side).exists()
    assert manage("dbhealth", db=initialized_db).returncode == 0


def test_initdb_sets_a_stale_wal_aside_before_creating_the_file(initialized_db, tmp_path):
    wal = crash_with_wal_rows(initialized_db, 10)
    initialized_db.path.unlink()  # the database is gone, its -wal and -shm are not
    backups = tmp_path / "bk"
    proc = manage("initdb", "--noinput", db=initialized_db, env={"DBINIT_BACKUP_DIR": str(backups)})
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "stale -wal/-shm moved" in proc.stdout
    assert len(list(backups.glob("*.sqlite3-wal"))) == 1
    assert not wal.exists()
    assert wal_rows(initialized_db.path) == 0
    assert manage("dbhealth", db=initialized_db).returncode == 0


def test_dbrepair_checks_a_checkpointed_file(initialized_db, tmp_path):
    wal = crash_with_wal_rows(initialized_db, 15)
    initialized_db.execute("DELETE FROM django_session")  # harmless; the crash left the WAL
    proc = manage("dbrepair", "--noinput", db=initialized_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # The checks ran after the WAL was folded into the file: nothing is left in it.
    assert not wal.exists() or wal.stat().st_size == 0
    assert wal_rows(initialized_db.path) == 15


# --- several writers at once --------------------------------------------------------------
@pytest.mark.slow
def test_concurrent_read_then_write_transactions_are_never_refused(initialized_db, tmp_path):
    processes, count = 6, 100
    initialized_db.execute(
        f"INSERT INTO dbinit_metadata (key, value, updated_at) VALUES ('{BENCH_KEY}', '0', datetime('now'))")
    go = tmp_path / "go"
    env = subprocess_env(initialized_db)
    procs = [subprocess.Popen([sys.executable, "tests/probes/sqlite_writers.py", str(count), str(go)],
                              cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(processes)]
    try:
        for p in procs:
            assert p.stdout.readline().strip() == "ready"
        go.touch()
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait()
    for p, (out, err) in zip(procs, outputs, strict=True):
        assert p.returncode == 0, err
        assert "database is locked" not in err
        assert json.loads(out.strip().splitlines()[-1]) | {"seconds": 0} == {"committed": count, "locked": 0,
                                                                              "seconds": 0}
    assert initialized_db.scalar("SELECT value FROM dbinit_metadata WHERE key = %s", (BENCH_KEY,)) == str(
        processes * count)


def test_journal_mode_that_cannot_be_switched_is_a_warning_not_a_failure(initialized_db):
    initialized_db.execute("PRAGMA journal_mode=delete")
    reader = sqlite3.connect(initialized_db.path, isolation_level=None)
    try:
        reader.execute("BEGIN")
        reader.execute("SELECT COUNT(*) FROM django_migrations").fetchone()  # holds a read lock
        proc = manage("initdb", "--noinput", "--format", "json", db=initialized_db,
                      env={"DBINIT_SQLITE_BUSY_TIMEOUT": "0.5"})
    finally:
        reader.close()
    assert proc.returncode == 0, proc.stdout + proc.stderr
    connect = next(s for s in json.loads(proc.stdout)["steps"] if s["name"] == "connect")
    assert connect["status"] == "warning"
    assert [w["id"] for w in connect["warnings"]] == ["dbinit.W054"]
    assert connect["detail"]["journal_mode"] == "delete"
    assert journal_mode(initialized_db.path) == "delete"
