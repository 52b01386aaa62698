"""The table of comparisons: each row names a measurement, its target and the function giving its two sides.

To add a comparison, write ``def my_comparison(ctx, result) -> (side_a, side_b)``
(each side a no-argument callable that prepares a fresh database outside the
timing and returns :func:`timer.timed`'s :class:`~timer.Timing`) and add one
:class:`Comparison` row to :data:`COMPARISONS`. ``ctx`` is the :class:`Context`:
scratch databases (the tests' :class:`~tests.support.databases.ScratchDatabase`),
the run's options and the project's facts.
"""

from __future__ import annotations

import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from timer import (
    ROOT,
    Result,
    Timing,
    child_env,
    codes_summary,
    log,
    manage,
    run_untimed,
    timed,
    timed_concurrent,
)

sys.path.insert(0, str(ROOT))
from tests.support.databases import (  # noqa: E402
    DEFAULT_TEST_POSTGRES_URL,
    ScratchDatabase,
    drop_databases_named,
    postgres_reachable,
    server_query,
)

DEFAULT_POSTGRES_URL = DEFAULT_TEST_POSTGRES_URL

# The project plus tests/apps/manyapp: about 230 migrations, a history of realistic length.
MANY = {"DJANGO_SETTINGS_MODULE": "tests.settings.many"}
WSGI_IMPORT = [sys.executable, "-c", "import aisecretary.wsgi"]  # what a gunicorn worker does at boot

FLOOR_TARGET = 1.1  # comparison 5: wall <= this x (one initdb + (n-1) x a no-op's CPU / cores)

BIG_DB = "dbinit_bench_1m"
BIG_ROWS = 1_000_000
# Columns checked against `psql -c '\d accounts_user'`; id is an identity column.
BIG_INSERT = f"""
INSERT INTO accounts_user (password, last_login, is_superuser, email, first_name, last_name,
                           is_staff, is_active, date_joined, tenant_id, role_id)
SELECT 'md5$x$y', NULL, false, 'user' || i || '@bench.example', '', '', false, true, now(),
       (SELECT id FROM tenants_tenant WHERE slug = 'system'),
       (SELECT id FROM accounts_role WHERE slug = 'member')
FROM generate_series(1, {BIG_ROWS}) AS i
"""


@dataclass(frozen=True)
class ProjectFacts:
    """What the project itself says (never retyped here): the seeded admin, its password, the roles."""

    admin_email: str
    admin_password: str
    system_tenant: str
    roles: tuple[str, ...]

    @classmethod
    def load(cls) -> ProjectFacts:
        # Reading the project's constants needs the app registry; setting Django up makes no
        # database connection (tests/test_startup_cost.py proves it), so any URL will do.
        os.environ.update(DJANGO_SETTINGS_MODULE="aisecretary.settings", AISECRETARY_ENV="testing",
                          DATABASE_URL=f"sqlite:///{tempfile.gettempdir()}/dbinit-bench-unused.sqlite3")
        import django

        django.setup()
        from accounts.reference import SYSTEM_ROLES
        from dbinit.configuration import DEFAULT_ADMIN_EMAIL, WELL_KNOWN_PASSWORD
        from tenants.reference import SYSTEM_TENANT

        return cls(DEFAULT_ADMIN_EMAIL, WELL_KNOWN_PASSWORD, SYSTEM_TENANT["slug"],
                   tuple(slug for slug, _, _ in SYSTEM_ROLES))


class Context:
    """What the comparisons share: the run's options, a scratch folder, scratch databases."""

    def __init__(self, args):
        self.args = args
        self.facts = ProjectFacts.load()
        self.tmp = Path(tempfile.mkdtemp(prefix="dbinit-bench-"))
        self.server_url = args.postgres_url
        self.created: dict[str, ScratchDatabase] = {}  # PostgreSQL databases to drop at the end
        self._sqlite_templates: dict[str, Path] = {}  # settings module -> initialised file
        self._pg_templates: dict[str, ScratchDatabase] = {}
        self._n = 0
        # Where templates go (the comparisons that measure them turn them on): dropped at the end.
        self.templates = {"DBINIT_TEMPLATE_DIR": str(self.tmp / "templates"),
                          "DBINIT_TEMPLATE_PREFIX": f"dbinit_bench_{os.getpid()}_tpl_"}

    # --- SQLite --------------------------------------------------------------------------
    def sqlite_path(self) -> Path:
        """A new run folder with its data/ folder made; the database file itself is not created."""
        self._n += 1
        db = ScratchDatabase.new("sqlite", self.tmp / f"run{self._n}")
        db.path.parent.mkdir(parents=True)
        return db.path

    @staticmethod
    def sqlite_url(path: Path) -> str:
        return f"sqlite:///{path}"

    def sqlite_initialised(self, **extra_env) -> Path:
        """A fresh copy of an initialised SQLite database (the template is built once with initdb)."""
        key = extra_env.get("DJANGO_SETTINGS_MODULE", "")
        if key not in self._sqlite_templates:
            template = ScratchDatabase.new("sqlite", self.tmp / f"template{len(self._sqlite_templates)}")
            template.path.parent.mkdir(parents=True)
            run_untimed(manage("initdb", "--noinput"), child_env(template.url, **extra_env))
            self._sqlite_templates[key] = template.path
        path = self.sqlite_path()
        shutil.copyfile(self._sqlite_templates[key], path)
        return path

    def sqlite_side(self, prepare, cmds, **extra_env):
        def side():
            path = prepare()
            try:
                return timed(cmds, child_env(self.sqlite_url(path), **extra_env))
            finally:
                shutil.rmtree(path.parent.parent, ignore_errors=True)
        return side

    # --- PostgreSQL ----------------------------------------------------------------------
    def pg_unreachable(self) -> str | None:
        return postgres_reachable(self.server_url)

    def pg_version(self) -> str:
        return server_query(self.server_url, "SHOW server_version")[0][0]

    def pg_new(self) -> ScratchDatabase:
        """A fresh PostgreSQL name (not created), dropped by :meth:`cleanup` if still there."""
        db = ScratchDatabase.new("postgresql", self.tmp, server_url=self.server_url,
                                 prefix=f"dbinit_bench_{os.getpid()}_")
        self.created[db.name] = db
        return db

    def pg_drop(self, db: ScratchDatabase):
        db.drop()
        self.created.pop(db.name, None)

    def pg_initialised_template(self, **extra_env) -> ScratchDatabase:
        """An initialised PostgreSQL database to copy (built once per settings module)."""
        key = extra_env.get("DJANGO_SETTINGS_MODULE", "")
        if key not in self._pg_templates:
            db = self.pg_new()
            run_untimed(manage("initdb", "--noinput"), child_env(db.url, **extra_env))
            self._pg_templates[key] = db
        return self._pg_templates[key]

    def pg_side(self, template: ScratchDatabase, cmds, **extra_env):
        """Each call: a fresh copy of ``template``, ``cmds`` timed against it, the copy dropped."""
        def side():
            db = self.pg_new()
            db.clone_from(template)
            try:
                return timed(cmds, child_env(db.url, **extra_env))
            finally:
                self.pg_drop(db)
        return side

    def big_database(self) -> ScratchDatabase:
        """``dbinit_bench_1m``: initialised plus 1,000,000 users; built once, reused while it matches."""
        big = ScratchDatabase.named(BIG_DB, self.server_url)
        if big.exists():
            try:
                rows = big.scalar("SELECT count(*) FROM accounts_user WHERE email LIKE %s", ["%@bench.example"])
            except psycopg2.Error:
                rows = None
            if rows == BIG_ROWS:
                log(f"  reusing cached {BIG_DB} ({rows:,} bench users)")
                # Bring it up to date if the project gained migrations since it was built.
                run_untimed(manage("initdb", "--noinput"), child_env(big.url))
                return big
            log(f"  cached {BIG_DB} has {rows} bench users, not {BIG_ROWS:,}: rebuilding")
            big.drop()
        log(f"  building {BIG_DB} (initdb, then {BIG_ROWS:,} users in one INSERT ... SELECT; cached afterwards)")
        started = time.perf_counter()
        building = self.pg_new()
        run_untimed(manage("initdb", "--noinput"), child_env(building.url))
        try:
            building.execute(BIG_INSERT)
        except psycopg2.Error as exc:
            raise SystemExit(f"Bulk insert into accounts_user failed (have its columns changed? "
                             f"see BIG_INSERT in bench/comparisons.py): {str(exc).strip()}")
        building.execute("VACUUM ANALYZE accounts_user")
        big = building.rename_to(BIG_DB)  # appears whole or not at all
        self.created.pop(building.name, None)
        log(f"  built {BIG_DB} in {time.perf_counter() - started:.1f} s")
        return big

    def verify_seeded_once(self, db: ScratchDatabase) -> list[str]:
        """What is wrong with the seed rows and the migration records of ``db``."""
        facts, found = self.facts, []
        tenants = db.scalar("SELECT count(*) FROM tenants_tenant WHERE slug = %s", [facts.system_tenant])
        if tenants != 1:
            found.append(f"{tenants} {facts.system_tenant!r} tenants")
        roles, slugs = db.query("SELECT count(*), count(DISTINCT slug) FROM accounts_role")[0]
        if (roles, slugs) != (len(facts.roles), len(facts.roles)):
            found.append(f"{roles} roles ({slugs} distinct slugs), expected {len(facts.roles)}")
        admins = db.scalar("SELECT count(*) FROM accounts_user WHERE lower(email) = lower(%s)", [facts.admin_email])
        if admins != 1:
            found.append(f"{admins} admin users")
        twice = db.query("SELECT app, name, count(*) FROM django_migrations GROUP BY 1, 2 HAVING count(*) > 1")
        if twice:
            found.append("migrations recorded more than once: " + ", ".join(f"{a}.{m}×{c}" for a, m, c in twice))
        return found

    def cleanup(self):
        if not self.pg_unreachable():
            dropped = drop_databases_named(self.server_url, self.templates["DBINIT_TEMPLATE_PREFIX"])
            if dropped:
                log(f"\nDropped {len(dropped)} template database(s)")
        if self.created:
            log(f"\nDropping {len(self.created)} scratch PostgreSQL database(s)")
            for db in list(self.created.values()):
                try:
                    self.pg_drop(db)
                except psycopg2.Error as exc:
                    log(f"  could not drop {db.name}: {str(exc).strip()}")
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- the comparisons ---------------------------------------------------------------------
Sides = tuple[Callable[[], Timing], Callable[[], Timing]]


def initdb_empty_sqlite(ctx: Context, result: Result) -> Sides:
    def empty():
        path = ctx.sqlite_path()
        if ctx.args.touch_sqlite:  # workaround: plain migrate refuses a missing file (dbinit.E009)
            path.touch()
        return path

    if ctx.args.touch_sqlite:
        result.notes.append("Comparison 1 ran with --touch-sqlite: both sides start from an empty "
                            "0-byte database file instead of a missing one.")
    a = ctx.sqlite_side(empty, [manage("initdb", "--noinput")])
    b = ctx.sqlite_side(empty, [
        manage("migrate"),
        manage("createsuperuser", "--noinput", "--email", ctx.facts.admin_email),
        manage("check", "--database", "default"),
    ], DJANGO_SUPERUSER_PASSWORD=ctx.facts.admin_password)
    return a, b


def initdb_initialised_sqlite(ctx: Context, result: Result) -> Sides:
    return (ctx.sqlite_side(ctx.sqlite_initialised, [manage("initdb", "--noinput")]),
            ctx.sqlite_side(ctx.sqlite_initialised, [manage("check")]))


def dbhealth_sqlite(ctx: Context, result: Result) -> Sides:
    return (ctx.sqlite_side(ctx.sqlite_initialised, [manage("dbhealth")]),
            ctx.sqlite_side(ctx.sqlite_initialised, [manage("check", "--database", "default")]))


def dbhealth_big_postgres(ctx: Context, result: Result) -> Sides:
    log("  preparing templates")
    big = ctx.big_database()
    empty = ctx.pg_initialised_template()
    return ctx.pg_side(big, [manage("dbhealth")]), ctx.pg_side(empty, [manage("dbhealth")])


def concurrent_initdb_postgres(ctx: Context, result: Result) -> Sides:
    n = ctx.args.processes
    cmd = manage("initdb", "--noinput")
    # The floor needs a no-op initdb's CPU time, measured in this run.
    noop = ctx.pg_side(ctx.pg_initialised_template(), [cmd])
    result.noop_cpu = statistics.median(noop().cpu for _ in range(3))

    def side_a():
        db = ctx.pg_new()  # not created: the processes race to create it
        try:
            timing, codes = timed_concurrent(cmd, child_env(db.url), n)
            result.exit_codes.update(codes)
            log(f"    exit codes: {codes_summary(codes)}")
            found = ctx.verify_seeded_once(db)
            log("    verify: " + ("; ".join(found) if found else "each seed row once, no migration twice"))
            result.problems.extend(found)
            return timing
        finally:
            ctx.pg_drop(db)

    def side_b():
        db = ctx.pg_new()
        try:
            return timed([cmd], child_env(db.url))
        finally:
            ctx.pg_drop(db)

    return side_a, side_b


def concurrent_initdb_report(ctx: Context, result: Result):
    n, facts = ctx.args.processes, ctx.facts
    cores = os.cpu_count() or 1
    # No schedule can beat one initdb plus the other n-1 processes' CPU spread over the cores.
    floor = result.median(result.b) + (n - 1) * result.noop_cpu / cores
    wall = result.median(result.a)
    result.notes.append(
        f"Comparison 5 against the machine's floor: {wall:.2f} s vs one initdb {result.median(result.b):.2f} s "
        f"+ {n - 1} x {result.noop_cpu:.3f} s (a no-op initdb's CPU, this run) / {cores} cores = {floor:.2f} s: "
        f"{wall / floor:.2f} x the floor (target <= {FLOOR_TARGET}). CPU of all {n} processes: "
        f"{statistics.median(t.cpu for t in result.a):.1f} s ({statistics.median(t.cpu for t in result.a) / n:.3f} s each).")
    result.notes.append(
        f"Comparison 5: exit codes over all {n}-process runs (warm-up included): "
        f"{codes_summary(result.exit_codes)}; SQL verification: "
        + ("; ".join(sorted(set(result.problems))) if result.problems
           else f"one {facts.system_tenant!r} tenant, {len(facts.roles)} roles, one admin, "
                "no migration recorded twice, in every run."))
    if wall > FLOOR_TARGET * floor:
        result.problems.append(f"{wall / floor:.2f} x the floor")


def noop_initdb_many_postgres(ctx: Context, result: Result) -> Sides:
    template = ctx.pg_initialised_template(**MANY)
    return (ctx.pg_side(template, [manage("initdb", "--noinput")], **MANY),
            ctx.pg_side(template, [manage("check")], **MANY))


def wsgi_check_vs_off(extra_env: dict):
    """WSGI worker import, DBINIT_STARTUP=check vs off, on an initialised PostgreSQL database."""
    def sides(ctx: Context, result: Result) -> Sides:
        template = ctx.pg_initialised_template(**extra_env)
        return (ctx.pg_side(template, [WSGI_IMPORT], DBINIT_STARTUP="check", **extra_env),
                ctx.pg_side(template, [WSGI_IMPORT], DBINIT_STARTUP="off", **extra_env))
    return sides


def template_vs_migrate_sqlite(ctx: Context, result: Result) -> Sides:
    on = {**MANY, **ctx.templates, "DBINIT_TEMPLATES": "on"}
    log("  building the template (one untimed initdb)")
    side = ctx.sqlite_side(ctx.sqlite_path, [manage("initdb", "--noinput")], **on)
    side()
    return side, ctx.sqlite_side(ctx.sqlite_path, [manage("migrate")], **MANY)


def no_template_vs_by_hand_sqlite(ctx: Context, result: Result) -> Sides:
    a = ctx.sqlite_side(ctx.sqlite_path, [manage("initdb", "--noinput")], **MANY)
    b = ctx.sqlite_side(ctx.sqlite_path, [
        manage("migrate"),
        manage("createsuperuser", "--noinput", "--email", ctx.facts.admin_email),
        manage("check", "--database", "default"),
    ], DJANGO_SUPERUSER_PASSWORD=ctx.facts.admin_password, **MANY)
    return a, b


def template_vs_migrate_postgres(ctx: Context, result: Result) -> Sides:
    on = {**MANY, **ctx.templates, "DBINIT_TEMPLATES": "on"}

    def missing(cmds, env, create=False):
        def side():
            db = ctx.pg_new()
            if create:  # plain migrate needs the database to exist: made outside the timing
                db.create_empty()
            try:
                return timed(cmds, child_env(db.url, **env))
            finally:
                ctx.pg_drop(db)
        return side

    log("  building the template (one untimed initdb)")
    a = missing([manage("initdb", "--noinput")], on)
    a()
    return a, missing([manage("migrate")], MANY, create=True)


@dataclass(frozen=True)
class Comparison:
    key: str
    title: str  # may use {processes} / {big_rows}
    target: float | None  # A/B at most this; None: judged by ``result.problems`` alone
    sides: Callable[[Context, Result], Sides]
    target_text: str = ""  # default "<= {target}"
    needs_postgres: bool = False
    concurrent: bool = False  # timed --concurrent-runs times instead of --runs
    report: Callable[[Context, Result], None] | None = None  # notes after the runs

    def result(self, args) -> Result:
        title = self.title.format(processes=args.processes, big_rows=f"{BIG_ROWS:,}")
        text = self.target_text.format(processes=args.processes) or f"<= {self.target}"
        return Result(self.key, title, self.target, text)


COMPARISONS = [
    Comparison("1", "initdb on a missing SQLite file vs migrate + createsuperuser + check --database",
               0.6, initdb_empty_sqlite),
    Comparison("2", "initdb on an initialised SQLite database vs check", 1.1, initdb_initialised_sqlite),
    Comparison("3", "dbhealth vs check --database default (initialised SQLite)", 1.3, dbhealth_sqlite),
    Comparison("4", "dbhealth on PostgreSQL with {big_rows} users vs empty", 1.1, dbhealth_big_postgres,
               needs_postgres=True),
    Comparison("5", "{processes} concurrent initdb on one missing PostgreSQL database vs 1 initdb", None,
               concurrent_initdb_postgres, target_text="<= 1.1 x floor, all {processes} exit 0, rows once",
               needs_postgres=True, concurrent=True, report=concurrent_initdb_report),
    Comparison("6", "no-op initdb vs check, ~230 migrations (PostgreSQL)", 1.02, noop_initdb_many_postgres,
               needs_postgres=True),
    Comparison("7", "WSGI worker import, DBINIT_STARTUP=check vs off (PostgreSQL)", 1.05, wsgi_check_vs_off({}),
               needs_postgres=True),
    Comparison("8", "WSGI worker import, DBINIT_STARTUP=check vs off, ~230 migrations (PostgreSQL)", 1.05,
               wsgi_check_vs_off(MANY), needs_postgres=True),
    Comparison("9", "initdb on a missing SQLite file from a template vs migrate, ~230 migrations", 0.15,
               template_vs_migrate_sqlite),
    Comparison("10", "initdb on a missing SQLite file without template vs migrate + createsuperuser + check, "
               "~230 migrations", 0.85, no_template_vs_by_hand_sqlite),
    Comparison("11", "initdb on a missing PostgreSQL database from a template vs migrate, ~230 migrations", 0.15,
               template_vs_migrate_postgres, needs_postgres=True),
]
