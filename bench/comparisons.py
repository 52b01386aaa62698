"""The table of comparisons: each row names a measurement, its target and the function giving its two sides.

To add a comparison, write ``def my_comparison(ctx, result) -> (side_a, side_b)``
(each side a no-argument callable that prepares a fresh database outside the
timing and returns :func:`timer.timed`'s :class:`~timer.Timing`) and add one
:class:`Comparison` row to :data:`COMPARISONS`. ``ctx`` is the :class:`Context`:
scratch databases (the tests' :class:`~tests.support.databases.ScratchDatabase`),
the run's options and the project's facts.
"""

from __future__ import annotations

import concurrent.futures
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import psycopg2
from timer import (
    ROOT,
    CommandFailed,
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
from tests.support.pgbouncer import PgBouncer, pgbouncer_binary  # noqa: E402
from tests.support.production import production  # noqa: E402
from tests.support.servers import free_port, kill_group, stop, wait_for_http, wait_until_gone  # noqa: E402

DEFAULT_POSTGRES_URL = DEFAULT_TEST_POSTGRES_URL

# The project plus tests/apps/manyapp: about 230 migrations, a history of realistic length.
MANY = {"DJANGO_SETTINGS_MODULE": "tests.settings.many"}
# The project plus real third-party apps (wagtail, allauth, django-celery-beat, django-oauth-toolkit,
# ...): about 290 migrations written by hand, each costing what a real project's migration costs.
THIRDPARTY = {"DJANGO_SETTINGS_MODULE": "tests.settings.thirdparty"}
WSGI_IMPORT = [sys.executable, "-c", "import aisecretary.wsgi"]  # what a gunicorn worker does at boot
# tests/probes/ scripts import the project: run as scripts, they need its root on sys.path.
PROBE_ENV = {"PYTHONPATH": str(ROOT)}

FINE_RUNS = 3  # times --runs, for a comparison marked ``fine``
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
        self._finished: list[ScratchDatabase] = []  # done with: dropped when the comparison ends
        self._sqlite_templates: dict[str, Path] = {}  # settings module -> initialised file
        self._pg_templates: dict[str, ScratchDatabase] = {}
        self._n = 0
        self._at_cleanup: list[Callable[[], None]] = []  # servers to stop, newest first
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

    def sqlite_initialised(self, *, then: tuple[list[str], ...] = (), **extra_env) -> Path:
        """A fresh copy of an initialised SQLite database (the template is built once with initdb).

        ``then``: commands run once on the template after initdb (e.g. a probe adding rows).
        """
        key = tuple(sorted(extra_env.items()))  # e.g. another settings module, another journal mode
        if key not in self._sqlite_templates:
            template = ScratchDatabase.new("sqlite", self.tmp / f"template{len(self._sqlite_templates)}")
            template.path.parent.mkdir(parents=True)
            for cmd in (manage("initdb", "--noinput"), *then):
                run_untimed(cmd, child_env(template.url, **extra_env))
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
        """Drop ``db`` when the comparison ends (:meth:`drop_finished`), not between its timed runs.

        On this VM (ext4 mounted ``discard``), a ``DROP DATABASE`` slowed the next ``CREATE DATABASE
        ... TEMPLATE`` from about 60 ms to 0.5 to 0.7 s: dropping the previous side's database timed
        its clean-up in the next side.
        """
        self._finished.append(db)

    def drop_finished(self):
        """Drop the scratch databases the comparison is done with (outside any timing)."""
        for db in self._finished:
            self._drop_now(db)
        self._finished.clear()

    def _drop_now(self, db: ScratchDatabase):
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
        """Each call: a fresh copy of ``template``, ``cmds`` timed against it, the copy dropped.

        The copy is connected to once, untimed: the first session of a new PostgreSQL database
        builds its relation-cache file (about 5 ms more to connect, 2 to 3 ms more for the first
        catalogue read here), which a database in use has long had. Without this, a side that
        connects (comparisons 7 and 8's check) paid it and a side that does not (``off``) did not.
        """
        def side():
            db = self.pg_copy(template)
            try:
                return timed(cmds, child_env(db.url, **extra_env))
            finally:
                self.pg_drop(db)
        return side

    def pg_copy(self, template: ScratchDatabase) -> ScratchDatabase:
        """A new copy of ``template``, connected to once (see :meth:`pg_side`)."""
        db = self.pg_new()
        db.clone_from(template)
        db.scalar("SELECT count(*) FROM pg_class")
        return db

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

    def at_cleanup(self, stop: Callable[[], None]):
        """Call ``stop`` at the end of the run (a server a comparison started), even after a failure."""
        self._at_cleanup.insert(0, stop)

    def cleanup(self):
        for stop_one in self._at_cleanup:
            stop_one()
        self._at_cleanup.clear()
        if not self.pg_unreachable():
            dropped = drop_databases_named(self.server_url, self.templates["DBINIT_TEMPLATE_PREFIX"])
            if dropped:
                log(f"\nDropped {len(dropped)} template database(s)")
        self._finished.clear()
        if self.created:
            log(f"\nDropping {len(self.created)} scratch PostgreSQL database(s)")
            for db in list(self.created.values()):
                try:
                    self._drop_now(db)
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
    # The floor needs a no-op initdb's CPU time, measured in this run: twice before each 32-process
    # run (warm-up included), so a machine whose speed drifts during the comparison (a shared VM)
    # moves the floor with it; the floor takes the median of all of them.
    template = ctx.pg_initialised_template()
    noop = ctx.pg_side(template, [cmd])
    tallies = {name: result.tallies.setdefault(name, []) for name in ("noop_cpu", "noop_wall", "control")}

    def control():
        """The same n processes at once with nothing to race for: n no-op initdb on an initialised
        database (no creation, no lock, no waiting). What the machine itself adds when n
        processes share its cores, measured beside each race."""
        db = ctx.pg_copy(template)
        try:
            timing, codes = timed_concurrent(cmd, child_env(db.url), n)
            result.exit_codes.update(codes)
            return timing
        finally:
            ctx.pg_drop(db)

    def side_a():
        for timing in (noop(), noop()):
            tallies["noop_cpu"].append(timing.cpu)
            tallies["noop_wall"].append(timing.wall)
        tallies["control"].append(control())
        log(f"    control, {n} no-op initdb at once: {tallies['control'][-1].wall:.2f} s")
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
    cpus = result.tallies["noop_cpu"]
    noop_cpu, one = statistics.median(cpus), result.median(result.b)
    # No schedule can beat one initdb plus the other n-1 processes' CPU spread over the cores.
    floor = one + (n - 1) * noop_cpu / cores
    wall = result.median(result.a)
    result.notes.append(
        f"Comparison 5 against the machine's floor: {wall:.2f} s vs one initdb {one:.2f} s "
        f"+ {n - 1} x {noop_cpu:.3f} s (a no-op initdb's CPU, median of {len(cpus)} "
        f"measured in this run, range {min(cpus):.3f}-{max(cpus):.3f}) / {cores} cores = {floor:.2f} s: "
        f"{wall / floor:.2f} x the floor (target <= {FLOOR_TARGET}). CPU of all {n} processes: "
        f"{statistics.median(t.cpu for t in result.a):.1f} s ({statistics.median(t.cpu for t in result.a) / n:.3f} s each).")
    # The control: the same formula applied to n processes that have nothing to race for.
    control = result.tallies["control"][1:] or result.tallies["control"]  # the first is the warm-up's
    control_wall = statistics.median(t.wall for t in control)
    control_cpu = statistics.median(t.cpu for t in control) / n
    noop_wall = statistics.median(result.tallies["noop_wall"])
    control_floor = noop_wall + (n - 1) * noop_cpu / cores
    # What the race may add beyond the control: the one process that migrates and seeds.
    race_floor = control_wall + max(one - noop_wall, 0.0)
    result.notes.append(
        f"Comparison 5's control, in the same run: {n} no-op initdb at once on an initialised database "
        f"(no creation, no lock, no wait) took {control_wall:.2f} s, {control_wall / control_floor:.2f} x the same "
        f"formula's floor for them ({noop_wall:.2f} s + {n - 1} x {noop_cpu:.3f} s / {cores} = "
        f"{control_floor:.2f} s): each used {control_cpu:.3f} s of CPU at once against {noop_cpu:.3f} s alone "
        f"(x {control_cpu / noop_cpu:.2f}). The race against the control plus the one initdb's own work "
        f"({control_wall:.2f} + {one:.2f} - {noop_wall:.2f} = {race_floor:.2f} s): {wall / race_floor:.2f}.")
    result.notes.append(
        f"Comparison 5: exit codes over all {n}-process runs (control and warm-up included): "
        f"{codes_summary(result.exit_codes)}; SQL verification: "
        + ("; ".join(sorted(set(result.problems))) if result.problems
           else f"one {facts.system_tenant!r} tenant, {len(facts.roles)} roles, one admin, "
                "no migration recorded twice, in every run."))
    if wall > FLOOR_TARGET * floor:
        result.problems.append(f"{wall / floor:.2f} x the floor")


def noop_initdb_vs_check_postgres(extra_env: dict):
    """No-op initdb vs check, on an initialised PostgreSQL database."""
    def sides(ctx: Context, result: Result) -> Sides:
        template = ctx.pg_initialised_template(**extra_env)
        return (ctx.pg_side(template, [manage("initdb", "--noinput")], **extra_env),
                ctx.pg_side(template, [manage("check")], **extra_env))
    return sides


def wsgi_check_vs_off(extra_env: dict):
    """WSGI worker import, DBINIT_STARTUP=check vs off, on an initialised PostgreSQL database."""
    def sides(ctx: Context, result: Result) -> Sides:
        template = ctx.pg_initialised_template(**extra_env)
        return (ctx.pg_side(template, [WSGI_IMPORT], DBINIT_STARTUP="check", **extra_env),
                ctx.pg_side(template, [WSGI_IMPORT], DBINIT_STARTUP="off", **extra_env))
    return sides


def template_vs_migrate_sqlite(settings: dict):
    """initdb on a missing SQLite file from a template (built once, untimed) vs migrate."""
    def sides(ctx: Context, result: Result) -> Sides:
        on = {**settings, **ctx.templates, "DBINIT_TEMPLATES": "on"}
        log("  building the template (one untimed initdb)")
        side = ctx.sqlite_side(ctx.sqlite_path, [manage("initdb", "--noinput")], **on)
        side()
        return side, ctx.sqlite_side(ctx.sqlite_path, [manage("migrate")], **settings)
    return sides


def no_template_vs_by_hand_sqlite(ctx: Context, result: Result) -> Sides:
    a = ctx.sqlite_side(ctx.sqlite_path, [manage("initdb", "--noinput")], **MANY)
    b = ctx.sqlite_side(ctx.sqlite_path, [
        manage("migrate"),
        manage("createsuperuser", "--noinput", "--email", ctx.facts.admin_email),
        manage("check", "--database", "default"),
    ], DJANGO_SUPERUSER_PASSWORD=ctx.facts.admin_password, **MANY)
    return a, b


def template_vs_migrate_postgres(settings: dict):
    """initdb on a missing PostgreSQL database from a template (built once, untimed) vs migrate."""
    def sides(ctx: Context, result: Result) -> Sides:
        on = {**settings, **ctx.templates, "DBINIT_TEMPLATES": "on"}

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
        return a, missing([manage("migrate")], settings, create=True)
    return sides


# --- 12: /health/ under a burst, production gunicorn ----------------------------------------------
BURST = 50  # requests per side, all sent at once
GUNICORN_WORKERS = 2
# The admin gets a password production accepts (it refuses the well-known one); bench-only.
BENCH_ADMIN_PASSWORD = "Bench-only-Pw-7d31c9"


def _group_peak_rss_mib(pgid: int) -> float:
    """The largest VmHWM (peak RSS) among the live processes of group ``pgid`` (the server's workers)."""
    from tests.support.servers import group_members

    peak = 0
    for pid in group_members(pgid):
        try:
            with open(f"/proc/{pid}/status") as fh:
                peak = max([peak, *(int(line.split()[1]) for line in fh if line.startswith("VmHWM:"))])
        except OSError:
            pass
    return peak / 1024


def _get_status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=60) as response:
            response.read()
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def health_burst_gunicorn(ctx: Context, result: Result) -> Sides:
    path = ctx.sqlite_initialised()
    url = ctx.sqlite_url(path)
    run_untimed([sys.executable, "tests/probes/set_password.py", ctx.facts.admin_email, BENCH_ADMIN_PASSWORD],
                child_env(url, **PROBE_ENV))
    env = child_env(url, **production(ALLOWED_HOSTS="127.0.0.1", DBINIT_STARTUP="check",
                                      DBINIT_ADMIN_PASSWORD=BENCH_ADMIN_PASSWORD,
                                      SECURE_SSL_REDIRECT="false"))  # plain HTTP here: no redirect to https
    port = free_port()
    log_file = open(ctx.tmp / "gunicorn.log", "w+b")  # noqa: SIM115 (closed at clean-up)
    cmd = [sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "-w", str(GUNICORN_WORKERS),
           "-b", f"127.0.0.1:{port}"]
    server = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log_file,
                              stderr=subprocess.STDOUT, start_new_session=True)

    def stop_server():
        stop(server)
        wait_until_gone(server.pid)
        kill_group(server.pid)
        log_file.close()

    ctx.at_cleanup(stop_server)
    base = f"http://127.0.0.1:{port}"
    if wait_for_http(base + "/health/live/", server, timeout=60) != 200:
        log_file.seek(0)
        raise CommandFailed(cmd, server.poll(), log_file.read().decode("utf-8", "replace")[-3000:],
                            summary="gunicorn did not answer /health/live/ with 200")

    def burst(path):
        def side():
            with concurrent.futures.ThreadPoolExecutor(BURST) as pool:
                start = time.perf_counter()
                statuses = list(pool.map(_get_status, [base + path] * BURST))
                wall = time.perf_counter() - start
            if statuses != [200] * BURST:
                counts = {code: statuses.count(code) for code in set(statuses)}
                raise CommandFailed(["GET", path], 1, f"statuses {counts}", summary=f"not all {BURST} answered 200")
            return Timing(wall, _group_peak_rss_mib(server.pid))
        return side

    return burst("/health/"), burst("/admin/login/")


# --- 13: concurrent initdb through PgBouncer -----------------------------------------------------
POOLED_PROCESSES = 16


def pooled_initdb_postgres(ctx: Context, result: Result) -> Sides:
    if pgbouncer_binary() is None:
        raise CommandFailed(["pgbouncer"], 127, "PgBouncer is not installed (apt-get install pgbouncer)")
    bouncer = PgBouncer("transaction", ctx.server_url).start()  # its default pool of 5
    ctx.at_cleanup(bouncer.stop)
    cmd = manage("initdb", "--noinput")

    def side(through_bouncer: bool):
        def run_once():
            db = ctx.pg_new()
            db.create_empty()  # outside the timing: PgBouncer would refuse a missing one for 15 s
            try:
                url = bouncer.url(db.name) if through_bouncer else db.url
                timing, codes = timed_concurrent(cmd, child_env(url), POOLED_PROCESSES)
                result.exit_codes.update(codes)
                found = ctx.verify_seeded_once(db)
                log(f"    exit codes: {codes_summary(codes)}; verify: "
                    + ("; ".join(found) if found else "each seed row once, no migration twice"))
                result.problems.extend(found)
                return timing
            finally:
                ctx.pg_drop(db)
        return run_once

    return side(True), side(False)


def pooled_initdb_report(ctx: Context, result: Result):
    result.notes.append(
        f"Comparison 13: exit codes over all {POOLED_PROCESSES}-process runs, both sides, warm-ups included: "
        f"{codes_summary(result.exit_codes)}; SQL verification: "
        + ("; ".join(sorted(set(result.problems))) if result.problems
           else "each seed row once, no migration recorded twice, in every run."))


# --- 14: SQLite write throughput ------------------------------------------------------------------
WRITERS, WRITES = 6, 150
WRITERS_KEY = "bench.counter"  # tests/probes/sqlite_writers.py's counter row
PREVIOUS_SQLITE = {"DBINIT_SQLITE_JOURNAL_MODE": "delete", "DBINIT_SQLITE_TRANSACTION_MODE": "deferred",
                   "DBINIT_SQLITE_SYNCHRONOUS": "full"}


def sqlite_writers(ctx: Context, result: Result) -> Sides:
    tallies: dict[str, list[tuple[int, int, float]]] = {"A": [], "B": []}  # (committed, locked, seconds)
    result.tallies = tallies

    def side(name: str, extra_env: dict):
        def run_once():
            path = ctx.sqlite_initialised(**extra_env)  # its template built by initdb with these settings
            try:
                conn = sqlite3.connect(path)
                conn.execute("INSERT INTO dbinit_metadata (key, value, updated_at) VALUES (?, '0', datetime('now'))",
                             [WRITERS_KEY])
                conn.commit()
                conn.close()
                go = path.parent / "go"
                env = child_env(ctx.sqlite_url(path), **PROBE_ENV, **extra_env)
                cmd = [sys.executable, "tests/probes/sqlite_writers.py", str(WRITES), str(go)]
                errs = [tempfile.TemporaryFile() for _ in range(WRITERS)]  # noqa: SIM115 (closed below)
                procs = [subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                          stderr=err) for err in errs]
                try:
                    for p in procs:
                        if p.stdout.readline().strip() != b"ready":
                            break  # it failed: reaped below with its exit code
                    start = time.perf_counter()
                    go.touch()  # every writer is set up: they start together
                    reaped = []
                    for p in procs:
                        reaped.append(os.wait4(p.pid, 0))
                        p.returncode = os.waitstatus_to_exitcode(reaped[-1][1])
                    wall = time.perf_counter() - start
                finally:
                    for p in procs:
                        if p.returncode is None:
                            p.kill()
                            p.wait()
                committed = locked = 0
                try:
                    for p, err in zip(procs, errs, strict=True):
                        out = p.stdout.read().decode()
                        p.stdout.close()
                        if p.returncode != 0:
                            err.seek(0)
                            raise CommandFailed(cmd, p.returncode, err.read().decode("utf-8", "replace")[-3000:])
                        counts = json.loads(out.strip().splitlines()[-1])
                        committed, locked = committed + counts["committed"], locked + counts["locked"]
                finally:
                    for err in errs:
                        err.close()
                counter = sqlite3.connect(path)
                value = int(counter.execute("SELECT value FROM dbinit_metadata WHERE key = ?",
                                            [WRITERS_KEY]).fetchone()[0])
                counter.close()
                if value != committed:  # each committed transaction added one
                    result.problems.append(f"{name}: counter {value} after {committed} committed transactions")
                if not committed:
                    raise CommandFailed(cmd, 0, f"{locked} locked, none committed")
                tallies[name].append((committed, locked, wall))
                log(f"    {name}: {committed} committed, {locked} locked, {committed / wall:.0f} tx/s")
                rss = max(usage.ru_maxrss for _, _, usage in reaped) / 1024
                cpu = sum(usage.ru_utime + usage.ru_stime for _, _, usage in reaped)
                return Timing(wall / committed, rss, cpu)
            finally:
                shutil.rmtree(path.parent.parent, ignore_errors=True)
        return run_once

    return side("A", {}), side("B", PREVIOUS_SQLITE)


def sqlite_writers_report(ctx: Context, result: Result):
    def figures(name):
        timed_runs = result.tallies[name][1:]  # the first is the warm-up
        tps = statistics.median(c / s for c, _, s in timed_runs)
        return tps, sum(locked for _, locked, _ in timed_runs), sum(c for c, _, _ in timed_runs)

    (tps_a, locked_a, done_a), (tps_b, locked_b, done_b) = figures("A"), figures("B")
    result.detail = (f"A {tps_a:.0f} tx/s, {locked_a} locked; B {tps_b:.0f} tx/s, {locked_b} locked "
                     f"(timed runs, {WRITERS}x{WRITES} each)")
    result.notes.append(
        f"Comparison 14: {WRITERS} processes x {WRITES} read-then-write transactions; A (WAL, IMMEDIATE) median "
        f"{tps_a:.0f} transactions/s, {done_a} committed and {locked_a} 'database is locked' over the timed runs; "
        f"B ({', '.join(f'{k}={v}' for k, v in PREVIOUS_SQLITE.items())}) median {tps_b:.0f} transactions/s, "
        f"{done_b} committed and {locked_b} 'database is locked'. The medians in the table are seconds per "
        "committed transaction." + (" Problems: " + "; ".join(result.problems) if result.problems else ""))


# --- 15: dbhealth with third-party apps ----------------------------------------------------------
THIRDPARTY_ROWS = [sys.executable, "tests/probes/thirdparty_rows.py"]  # as tests/conftest.py's template


def dbhealth_thirdparty_sqlite(ctx: Context, result: Result) -> Sides:
    log("  preparing the template (initdb with the third-party apps, untimed)")

    def initialised():
        return ctx.sqlite_initialised(then=(THIRDPARTY_ROWS,), **THIRDPARTY, **PROBE_ENV)

    initialised()  # build it now, outside the warm-up
    return (ctx.sqlite_side(initialised, [manage("dbhealth")], **THIRDPARTY),
            ctx.sqlite_side(initialised, [manage("check", "--database", "default")], **THIRDPARTY))



@dataclass(frozen=True)
class Comparison:
    key: str
    title: str  # may use {processes} / {big_rows}
    target: float | None  # A/B at most this; None: judged by ``result.problems`` alone
    sides: Callable[[Context, Result], Sides]
    target_text: str = ""  # default "<= {target}"
    needs_postgres: bool = False
    concurrent: bool = False  # timed --concurrent-runs times instead of --runs
    # Sides a few per cent apart (a start-up check against a ~0.4 s process): FINE_RUNS x --runs
    # timed runs, so that the medians are not within the machine's noise of each other.
    fine: bool = False
    report: Callable[[Context, Result], None] | None = None  # notes after the runs

    def result(self, args) -> Result:
        title = self.title.format(processes=args.processes, big_rows=f"{BIG_ROWS:,}")
        text = self.target_text.format(processes=args.processes) or f"<= {self.target}"
        return Result(self.key, title, self.target, text)


COMPARISONS = [
    Comparison("1", "initdb on a missing SQLite file vs migrate + createsuperuser + check --database",
               0.6, initdb_empty_sqlite),
    Comparison("2", "initdb on an initialised SQLite database vs check", 1.1, initdb_initialised_sqlite, fine=True),
    Comparison("3", "dbhealth vs check --database default (initialised SQLite)", 1.3, dbhealth_sqlite),
    Comparison("4", "dbhealth on PostgreSQL with {big_rows} users vs empty", 1.1, dbhealth_big_postgres,
               needs_postgres=True),
    Comparison("5", "{processes} concurrent initdb on one missing PostgreSQL database vs 1 initdb", None,
               concurrent_initdb_postgres, target_text="<= 1.1 x floor, all {processes} exit 0, rows once",
               needs_postgres=True, concurrent=True, report=concurrent_initdb_report),
    Comparison("6", "no-op initdb vs check, ~230 migrations (PostgreSQL)", 1.02, noop_initdb_vs_check_postgres(MANY),
               needs_postgres=True, fine=True),
    Comparison("7", "WSGI worker import, DBINIT_STARTUP=check vs off (PostgreSQL)", 1.05, wsgi_check_vs_off({}),
               needs_postgres=True, fine=True),
    Comparison("8", "WSGI worker import, DBINIT_STARTUP=check vs off, ~230 migrations (PostgreSQL)", 1.05,
               wsgi_check_vs_off(MANY), needs_postgres=True, fine=True),
    Comparison("9", "initdb on a missing SQLite file from a template vs migrate, ~230 migrations", 0.15,
               template_vs_migrate_sqlite(MANY)),
    Comparison("10", "initdb on a missing SQLite file without template vs migrate + createsuperuser + check, "
               "~230 migrations", 0.85, no_template_vs_by_hand_sqlite),
    Comparison("11", "initdb on a missing PostgreSQL database from a template vs migrate, ~230 migrations", 0.15,
               template_vs_migrate_postgres(MANY), needs_postgres=True),
    Comparison("12", f"{BURST} GET /health/ vs {BURST} GET /admin/login/ at once, gunicorn -w {GUNICORN_WORKERS}, "
               "production settings (SQLite)", 2.0, health_burst_gunicorn),
    Comparison("13", f"{POOLED_PROCESSES} concurrent initdb on one empty PostgreSQL database through PgBouncer "
               "(transaction, pool 5) vs directly", 1.25, pooled_initdb_postgres,
               target_text="<= 1.25, all exit 0, rows once", needs_postgres=True, concurrent=True,
               report=pooled_initdb_report),
    Comparison("14", f"SQLite, {WRITERS} processes x {WRITES} read-then-write transactions, WAL + IMMEDIATE vs "
               "delete + deferred + synchronous=full (s per committed transaction)", 1.0, sqlite_writers,
               report=sqlite_writers_report),
    Comparison("15", "dbhealth vs check --database default, third-party apps (initialised SQLite)", 1.3,
               dbhealth_thirdparty_sqlite),
    Comparison("16", "initdb on a missing SQLite file from a template vs migrate, third-party apps "
               "(~290 migrations)", 0.15, template_vs_migrate_sqlite(THIRDPARTY)),
    Comparison("17", "initdb on a missing PostgreSQL database from a template vs migrate, third-party apps "
               "(~290 migrations)", 0.15, template_vs_migrate_postgres(THIRDPARTY), needs_postgres=True),
    Comparison("18", "WSGI worker import, DBINIT_STARTUP=check vs off, third-party apps (~290 migrations, "
               "PostgreSQL)", 1.05, wsgi_check_vs_off(THIRDPARTY), needs_postgres=True, fine=True),
    Comparison("19", "no-op initdb vs check, third-party apps (~290 migrations, PostgreSQL)", 1.02,
               noop_initdb_vs_check_postgres(THIRDPARTY), needs_postgres=True, fine=True),
]
