"""Real-world schemas: popular third-party apps (tests.settings.thirdparty), about 290 migrations.

A healthy database passes every entry point with no finding above info; then,
with rows in the tables, each kind of damage is named by dbhealth, left
untouched by ``dbrepair --dry-run``, and healed by ``dbrepair`` with every row
count unchanged, or reported with its manual steps. Every test starts from a
copy of one template database (migrating takes 20 to 60 s).
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field

import pytest

from tests.support.databases import manage, python

pytestmark = pytest.mark.slow

BOOKKEEPING = {"dbinit_initializationrun", "dbinit_migrationchecksum", "django_migrations"}


# --- helpers ------------------------------------------------------------------------------------
def health(db):
    proc = manage("dbhealth", "--format", "json", db=db)
    return proc.returncode, json.loads(proc.stdout)


def repair(db, *args):
    proc = manage("dbrepair", "--noinput", "--format", "json", *args, db=db, timeout=300)
    return proc, json.loads(proc.stdout)


def data_counts(db):
    return {t: n for t, n in db.row_counts().items() if t not in BOOKKEEPING and not t.startswith("sqlite_")}


def fingerprint(db):
    """What a dry run must leave identical: the file's bytes, or the catalogue, the records and every count."""
    if db.engine == "sqlite":
        return hashlib.sha256(db.path.read_bytes()).hexdigest()
    indexes = sorted(db.query("SELECT indexname FROM pg_indexes WHERE schemaname = current_schema()"))
    constraints = sorted(db.query("SELECT conname FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
                                  "WHERE n.nspname = current_schema()"))
    return ({t: sorted(db.columns(t)) for t in db.tables()}, indexes, constraints,
            sorted(db.applied_migrations()), db.row_counts())


def problems(report, floor=("warning", "error", "critical")):
    return [c for c in report["checks"] if c["status"] in floor]


def assert_reported(report, code, text):
    messages = [c["message"] for c in report["checks"] if c["id"] == code]
    assert any(text in m for m in messages), (code, text, problems(report))


def drop_index(db, name):
    db.execute(f'DROP INDEX "{name}"')


def drop_foreign_key(db, table, column):
    """Drop the foreign key on ``table.column``: ALTER TABLE on PostgreSQL, a table rebuild on SQLite."""
    if db.engine == "postgresql":
        name = db.scalar(
            "SELECT c.conname FROM pg_constraint c JOIN pg_attribute a ON a.attrelid = c.conrelid "
            "AND a.attnum = c.conkey[1] WHERE c.conrelid = %s::regclass AND c.contype = 'f' AND a.attname = %s",
            (table, column))
        db.execute(f'ALTER TABLE "{table}" DROP CONSTRAINT "{name}"')
        return
    sql = db.scalar("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", (table,))
    indexes = [r[0] for r in db.query("SELECT sql FROM sqlite_master WHERE type = 'index' AND tbl_name = %s "
                                      "AND sql IS NOT NULL", (table,))]
    stripped = re.sub(rf'("{column}" [^,]*?) REFERENCES "\w+" \("\w+"\)( DEFERRABLE INITIALLY DEFERRED)?',
                      r"\1", sql)
    assert stripped != sql
    db.execute("PRAGMA foreign_keys = OFF", "BEGIN",
               stripped.replace(f'CREATE TABLE "{table}"', 'CREATE TABLE "rebuilt"', 1),
               f'INSERT INTO "rebuilt" SELECT * FROM "{table}"', f'DROP TABLE "{table}"',
               f'ALTER TABLE "rebuilt" RENAME TO "{table}"', *indexes, "COMMIT")


def forget(db, app, *prefixes):
    """Delete the records of ``app``'s migrations whose names start with one of ``prefixes`` (all if none)."""
    condition = " OR ".join(f"name LIKE '{p}%'" for p in prefixes) or "1 = 1"
    db.execute(f"DELETE FROM django_migrations WHERE app = '{app}' AND ({condition})")


def index_on(db, table, column):
    """The names of the plain indexes on exactly ``table.column`` (generated names differ by engine)."""
    if db.engine == "postgresql":
        return [r[0] for r in db.query(
            "SELECT i.relname FROM pg_index x JOIN pg_class i ON i.oid = x.indexrelid JOIN pg_attribute a "
            "ON a.attrelid = x.indrelid AND a.attnum = x.indkey[0] WHERE x.indrelid = %s::regclass "
            "AND x.indnatts = 1 AND NOT x.indisunique AND a.attname = %s", (table, column))]
    return [r[0] for r in db.query(
        "SELECT il.name FROM pragma_index_list(%s) il JOIN pragma_index_info(il.name) ii "
        "WHERE il.\"unique\" = 0 GROUP BY il.name HAVING COUNT(*) = 1 AND MAX(ii.name) = %s", (table, column))]


# --- a healthy database -------------------------------------------------------------------------
def test_template_has_over_150_migrations_and_rows(thirdparty_db):
    assert len(thirdparty_db.applied_migrations()) >= 250
    counts = data_counts(thirdparty_db)
    assert counts["account_emailaddress"] == 20 and counts["django_celery_beat_periodictask"] == 5
    assert counts["constructs_custom_shelf"] == 3 and counts["constructs_placement"] == 4


def test_healthy_database_passes_every_entry_point(thirdparty_db):
    db = thirdparty_db
    before = fingerprint(db) if db.engine == "postgresql" else None

    again = manage("initdb", "--noinput", db=db)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "nothing to do" in again.stdout

    code, report = health(db)
    assert code == 0 and problems(report) == [], problems(report)
    assert {c["id"] for c in report["checks"]} >= {"dbinit.I003", "dbinit.I004", "dbinit.I009"}
    if db.engine == "sqlite":  # the FTS5 table: judged for its columns only, said at info level
        assert_reported(report, "dbinit.I022", "wagtailsearch_indexentry_fts: virtual table")

    check = manage("check", "--database", "default", db=db)
    assert check.returncode == 0 and "dbinit." not in check.stdout + check.stderr, check.stdout + check.stderr

    migrate = manage("migrate", "--noinput", db=db)
    assert migrate.returncode == 0 and "No migrations to apply" in migrate.stdout, migrate.stdout + migrate.stderr

    start = python("-c", "import aisecretary.wsgi", db=db, env={"DBINIT_STARTUP": "check"})
    assert start.returncode == 0, start.stderr
    assert "Start-up (wsgi, DBINIT_STARTUP=check) ready" in start.stderr

    endpoint = python("tests/probes/health.py", "?format=json", db=db)
    assert endpoint.returncode == 0, endpoint.stderr
    assert json.loads(endpoint.stdout)["status"] == 200

    nothing = manage("dbrepair", "--noinput", db=db)
    assert nothing.returncode == 0, nothing.stdout + nothing.stderr
    if before is not None:
        # initdb's history row aside, nothing changed.
        assert fingerprint(db)[:4] == before[:4]


# --- damage ---------------------------------------------------------------------------------------
@dataclass
class Damage:
    apply: object
    findings: list[tuple[str, str]]  # (id, text the message must contain)
    healed: bool = True
    left: list[tuple[str, str]] = field(default_factory=list)  # what dbrepair reports as still wrong
    new_tables: tuple = ()  # tables dbrepair recreates (empty)


def _dropped_table(db):
    db.drop_table("django_celery_beat_solarschedule")


def _dropped_column(db):
    db.drop_column("django_celery_beat_periodictask", "enabled")  # NOT NULL, default True


def _dropped_index(db):
    for name in index_on(db, "account_emailaddress", "email"):
        drop_index(db, name)


def _dropped_plain_index_beside_its_like_index(db):
    """PostgreSQL gives an indexed varchar column a second index for LIKE (``..._like``, another
    operator class): drop only the plain one. SQLite has no _like index, so there it is the plain one."""
    like = [n for n in index_on(db, "account_emailaddress", "email") if n.endswith("_like")]
    assert len(like) == (1 if db.engine == "postgresql" else 0)
    for name in index_on(db, "account_emailaddress", "email"):
        if name not in like:
            drop_index(db, name)
    assert index_on(db, "account_emailaddress", "email") == like


def _dropped_unique(db):
    drop_index(db, "unique_primary_email")  # a conditional UniqueConstraint: a partial unique index


def _dropped_foreign_key(db):
    drop_foreign_key(db, "account_emailaddress", "user_id")


def _lost_createmodel(db):
    forget(db, "django_celery_beat")


def _lost_addfield(db):
    forget(db, "wagtailusers", "0015_")


def _lost_addindex(db):
    forget(db, "oauth2_provider", "0022_")


def _lost_record_and_dropped_table(db):
    forget(db, "django_celery_beat", "0012_", "0013_", "0014_", "0015_", "0016_", "0017_", "0018_", "0019_")
    db.drop_table("django_celery_beat_solarschedule")


def _lost_alterfield(db):
    forget(db, "constructs", "0002_")  # AddField with db_default, AlterField NULL -> NOT NULL


def _lost_runpython(db):
    forget(db, "account", "0008_", "0009_")


def _partly_applied(db):
    forget(db, "django_celery_beat")
    db.drop_column("django_celery_beat_periodictask", "one_off")  # added by 0007 with start_time


def _lost_under_recorded_with_dropped_column(db):
    forget(db, "django_celery_beat", "0007_")  # 0008 and later still recorded: 0007 ran for sure
    db.drop_column("django_celery_beat_periodictask", "one_off")


def _dropped_not_null_without_default(db):
    db.drop_column("django_celery_beat_periodictask", "task")  # NOT NULL, no default
    _dropped_index(db)  # an independent repair that must stand


DAMAGES = {
    "dropped_table": Damage(_dropped_table, [("dbinit.E030", "django_celery_beat_solarschedule")],
                            new_tables=("django_celery_beat_solarschedule",)),
    "dropped_not_null_column_with_default": Damage(
        _dropped_column, [("dbinit.E031", "django_celery_beat_periodictask.enabled")]),
    "dropped_index": Damage(_dropped_index, [("dbinit.W026", "account_emailaddress (email)")]),
    "dropped_plain_index_beside_its_like_index": Damage(
        _dropped_plain_index_beside_its_like_index, [("dbinit.W026", "account_emailaddress (email)")]),
    "dropped_unique_constraint": Damage(
        _dropped_unique, [("dbinit.W027", "account_emailaddress: unique_primary_email (user_id, primary)")]),
    "dropped_foreign_key": Damage(
        _dropped_foreign_key, [("dbinit.W028", "account_emailaddress.user_id -> accounts_user")]),
    "lost_createmodel_records": Damage(_lost_createmodel, [("dbinit.W024", "django_celery_beat.0001_initial")]),
    "lost_addfield_record": Damage(
        _lost_addfield, [("dbinit.W024", "wagtailusers.0015_userprofile_keyboard_shortcuts")]),
    "lost_addindex_record": Damage(
        _lost_addindex, [("dbinit.W024", "oauth2_provider.0022_refreshtoken_token_family_index")]),
    "lost_alterfield_record": Damage(
        _lost_alterfield, [("dbinit.W024", "constructs.0002_isbn_and_note_text")]),
    "lost_record_and_dropped_table": Damage(
        _lost_record_and_dropped_table,
        [("dbinit.E030", "django_celery_beat_solarschedule"), ("dbinit.W024", "django_celery_beat.0012_")],
        new_tables=("django_celery_beat_solarschedule",)),
    "lost_runpython_record": Damage(
        _lost_runpython,
        [("dbinit.W029", "account.0008_emailaddress_unique_primary_email_fixup")], healed=False,
        left=[("dbinit.W029", "account.0008_emailaddress_unique_primary_email_fixup")]),
    "partly_applied_migration": Damage(
        _partly_applied,
        [("dbinit.E032", "django_celery_beat.0007_auto_20180521_0826"),
         ("dbinit.E032", "missing django_celery_beat_periodictask.one_off")], healed=False,
        left=[("dbinit.E032", "django_celery_beat_periodictask.one_off")]),
    "lost_record_under_recorded_ones_with_a_dropped_column": Damage(
        _lost_under_recorded_with_dropped_column,
        [("dbinit.E032", "missing django_celery_beat_periodictask.one_off"),
         ("dbinit.E031", "django_celery_beat_periodictask.one_off")]),
    "dropped_not_null_column_without_default": Damage(
        _dropped_not_null_without_default,
        [("dbinit.E031", "django_celery_beat_periodictask.task"), ("dbinit.W026", "account_emailaddress (email)")],
        healed=False, left=[("dbinit.E031", "django_celery_beat_periodictask.task")]),
}


@pytest.mark.parametrize("name", DAMAGES)
def test_damage_is_named_dry_run_changes_nothing_and_repair_keeps_every_row(thirdparty_db, name):
    db, damage = thirdparty_db, DAMAGES[name]
    damage.apply(db)
    counts = data_counts(db)

    code, report = health(db)
    for finding_id, text in damage.findings:
        assert_reported(report, finding_id, text)

    before = fingerprint(db)
    proc, planned = repair(db, "--dry-run")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert all(a["status"] == "planned" for a in planned["actions"])
    assert fingerprint(db) == before

    proc, result = repair(db)
    after = data_counts(db)
    for table in damage.new_tables:
        assert after.pop(table) == 0
    assert after == counts  # not a row lost or added anywhere
    if damage.healed:
        assert proc.returncode == 0, json.dumps(result["remaining"] or result["actions"], indent=1)
        code, report = health(db)
        assert code == 0 and problems(report) == [], problems(report)
    else:
        assert proc.returncode == 1
        for finding_id, text in damage.left:
            left = [f for f in result["remaining"] if f["id"] == finding_id and text in f["message"]]
            assert left and left[0]["hint"], result["remaining"]


def test_lost_runpython_record_is_recorded_by_the_manual_command_it_names(thirdparty_db):
    _lost_runpython(thirdparty_db)
    code, report = health(thirdparty_db)
    hint = next(c["hint"] for c in report["checks"] if c["id"] == "dbinit.W029")
    command = "python manage.py dbrepair --record account.0008_emailaddress_unique_primary_email_fixup"
    assert command in hint
    proc = manage(*command.split()[2:], "--noinput", db=thirdparty_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    # It recorded the one named, then verified and recorded the one waiting for it.
    assert {("account", "0008_emailaddress_unique_primary_email_fixup"),
            ("account", "0009_emailaddress_unique_primary_email")} <= set(thirdparty_db.applied_migrations())
    code, report = health(thirdparty_db)
    assert code == 0 and problems(report) == [], problems(report)


def test_initdb_and_migrate_refuse_to_reapply_lost_records(thirdparty_db):
    _lost_addindex(thirdparty_db)
    init = manage("initdb", "--noinput", db=thirdparty_db)
    assert init.returncode == 1 and "dbinit.E033" in init.stderr, init.stdout + init.stderr
    assert "oauth2_provider.0022_refreshtoken_token_family_index" in init.stderr
    migrate = manage("migrate", "--noinput", db=thirdparty_db)
    assert migrate.returncode == 1 and "(dbinit.W024)" in migrate.stderr, migrate.stdout + migrate.stderr
    assert ("oauth2_provider", "0022_refreshtoken_token_family_index") not in thirdparty_db.applied_migrations()


def test_a_dropped_index_does_not_block_migrate_or_start_up(thirdparty_db):
    _dropped_index(thirdparty_db)
    migrate = manage("migrate", "--noinput", db=thirdparty_db)
    assert migrate.returncode == 0 and "dbinit.W026" in migrate.stderr, migrate.stdout + migrate.stderr
    # Start-up on the fingerprint's fast path judges tables and columns only (no migration graph):
    # it starts; the missing index stays dbhealth's warning.
    start = python("-c", "import aisecretary.wsgi", db=thirdparty_db, env={"DBINIT_STARTUP": "check"})
    assert start.returncode == 0, start.stderr
    endpoint = python("tests/probes/health.py", "?format=json", db=thirdparty_db)
    assert json.loads(endpoint.stdout)["status"] == 200
    code, report = health(thirdparty_db)
    assert code == 0 and "dbinit.W026" in {c["id"] for c in report["checks"]}


def test_lost_runpython_record_under_a_recorded_migration_is_recorded_with_dbrepair_record(thirdparty_db):
    forget(thirdparty_db, "account", "0008_")  # 0009 is still recorded: migrate --fake would refuse
    code, report = health(thirdparty_db)
    assert_reported(report, "dbinit.E021", "account.0009_emailaddress_unique_primary_email")
    hint = next(c["hint"] for c in report["checks"] if c["id"] == "dbinit.W029")
    command = "python manage.py dbrepair --record account.0008_emailaddress_unique_primary_email_fixup"
    assert command in hint
    proc = manage(*command.split()[2:], "--noinput", db=thirdparty_db)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert ("account", "0008_emailaddress_unique_primary_email_fixup") in thirdparty_db.applied_migrations()
    bad = manage("dbrepair", "--noinput", "--record", "account.0001_initial", db=thirdparty_db)
    assert bad.returncode == 1 and "dbinit.E035" in bad.stderr
