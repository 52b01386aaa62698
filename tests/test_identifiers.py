"""Database names go into SQL quoted by the driver (psycopg2.sql.Identifier), or are refused.

A database named ``x"--`` must be created, reset and dropped as itself: resetdb once dropped
the database ``x`` instead.
"""

import uuid

import pytest

from tests.support.databases import ScratchDatabase, manage

pytestmark = pytest.mark.postgresql_only


@pytest.fixture
def victim_and_quoted():
    base = f"dbinit_t_{uuid.uuid4().hex[:10]}"
    victim = ScratchDatabase.named(base)
    quoted = ScratchDatabase.named(base + '"--')
    victim.create_empty()
    victim.execute("CREATE TABLE keep_me (x int)", "INSERT INTO keep_me VALUES (42)")
    yield victim, quoted
    quoted.drop()
    victim.drop()


def test_initdb_creates_the_database_it_was_given(victim_and_quoted):
    victim, quoted = victim_and_quoted
    proc = manage("initdb", "--noinput", db=quoted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert quoted.exists()
    assert "accounts_user" in quoted.tables()
    assert victim.tables() == {"keep_me"}


def test_resetdb_never_drops_a_different_database(victim_and_quoted):
    victim, quoted = victim_and_quoted
    assert manage("initdb", "--noinput", db=quoted).returncode == 0
    proc = manage("resetdb", "--noinput", "--no-backup", db=quoted)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert victim.exists() and victim.scalar("SELECT x FROM keep_me") == 42
    assert quoted.exists() and quoted.scalar("SELECT COUNT(*) FROM accounts_user") == 1


def test_a_name_longer_than_postgresql_keeps_is_refused():
    long_db = ScratchDatabase.named("dbinit_t_" + "x" * 60)
    proc = manage("initdb", "--noinput", db=long_db)
    assert proc.returncode == 1
    assert "dbinit.E082" in proc.stderr and "Traceback" not in proc.stderr
    assert not long_db.exists()
