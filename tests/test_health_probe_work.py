"""What one /health/ request costs a warm production worker: a handful of queries, each sent once, and
no file read but the SQLite database's own header (no migration file listed, read or hashed).

The time itself is measured by ``make bench`` (comparison 12), never here.
"""

import json
from collections import Counter

from tests.support.databases import python
from tests.support.production import production

ADMIN = "admin@ai-secretary.com"
PASSWORD = production()["DBINIT_ADMIN_PASSWORD"]
# Start-up as a production worker does it (the check), so the probe finds a warm process.
WORKER = production(DBINIT_STARTUP="check")


def probe_work(db) -> dict:
    # Production refuses the development password (dbinit.C003): the admin gets the configured one.
    changed = python("tests/probes/set_password.py", ADMIN, PASSWORD, db=db)
    assert changed.returncode == 0, changed.stderr
    proc = python("tests/probes/health_work.py", db=db, env=WORKER)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_a_warm_probe_sends_each_query_once_and_reads_no_migration_file(initialized_db):
    work = probe_work(initialized_db)
    assert work["status"] == 200, work["body"]
    assert json.loads(work["body"]) == {"status": "ok", "checks": {
        "dbinit:configuration": "ok", "dbinit:database": "ok", "dbinit:migrations": "ok", "dbinit:seed": "ok"}}
    repeated = [sql for sql, n in Counter(work["queries"]).items() if n > 1]
    assert repeated == []
    # The applied-migration records: one COUNT(*) with the stored fingerprint, nothing else.
    assert len([q for q in work["queries"] if '"django_migrations"' in q]) == 1
    # The table list once, with the columns; no per-table introspection (Django's get_constraints).
    assert not [q for q in work["queries"] if q.startswith(("PRAGMA index_list(", "PRAGMA table_xinfo(",
                                                            "PRAGMA foreign_key_list("))]
    assert len(work["queries"]) <= 12, "\n".join(work["queries"])
    # SQLite: the file's header (a file that is not a database fails the probe); nothing else.
    expected = [f"open {initialized_db.path}"] if initialized_db.path else []
    assert work["files"] == expected
