"""Whole-process benchmarks of dbinit's commands against what a user would run instead.

Method
------
Every measurement is a whole ``python manage.py ...`` process (or a chain of
them), started with ``subprocess.Popen`` and reaped with ``os.wait4``: the wall
time runs from just before the first process starts to just after the last
one is reaped, and ``wait4``'s ``ru_maxrss`` gives each child's peak resident
memory (the figure reported is the largest single child).

For each comparison, A and B are run once each untimed (warm-up: the OS file
cache, ``.pyc`` files, the server's caches), then alternately A, B, A, B, ...
``--runs`` times each, so that noise on a busy machine hits both sides alike.
The report gives the median wall time of each side, the ratio of the medians
A/B, whether it meets the target, and the peak RSS over the timed runs.

Every run gets a fresh database prepared outside the timed region: a new
folder for a missing SQLite file, a copy of an initialised SQLite template, or
a new PostgreSQL database (``CREATE DATABASE ... TEMPLATE ...``) that is
dropped right after the run. The children get the environment a developer
would: ``AISECRETARY_ENV=development``, ``DBINIT_STARTUP=off``, the run's
``DATABASE_URL``, no ``DJANGO_SETTINGS_MODULE`` and no
``PYTHONDONTWRITEBYTECODE`` (bytecode caches work, as they do for a user).

The PostgreSQL database with 1,000,000 users (comparison 4) is built once and
kept across runs as ``dbinit_bench_1m``; every other scratch database is
dropped at the end. Without a PostgreSQL server, comparisons 4 and 5 are
skipped.

Exit status: 0 when every command succeeded (whether or not the targets are
met: this is a report, not a test), 1 when a command exited non-zero (its
output's tail is printed).

Usage (from the repository root): ``make bench`` or
``.venv/bin/python bench/bench.py [--quick] [--runs N] [--only 1,3]``.
"""

from __future__ import annotations

import argparse
import collections
import os
import platform
import shutil
import signal
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import psycopg2

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]
RESULTS = ROOT / "bench" / "results" / "latest.md"
DEFAULT_POSTGRES_URL = "postgres://root@127.0.0.1:5432/postgres"

BIG_DB = "dbinit_bench_1m"
BIG_ROWS = 1_000_000
ADMIN_EMAIL = "admin@ai-secretary.com"
# Columns checked against `psql -c '\d accounts_user'`; id is an identity column.
BIG_INSERT = f"""
INSERT INTO accounts_user (password, last_login, is_superuser, email, first_name, last_name,
                           is_staff, is_active, date_joined, tenant_id, role_id)
SELECT 'md5$x$y', NULL, false, 'user' || i || '@bench.example', '', '', false, true, now(),
       (SELECT id FROM tenants_tenant WHERE slug = 'system'),
       (SELECT id FROM accounts_role WHERE slug = 'member')
FROM generate_series(1, {BIG_ROWS}) AS i
"""


def log(message=""):
    print(message, flush=True)


# --- running and timing processes ------------------------------------------------------
class CommandFailed(Exception):
    def __init__(self, cmd, code, output_tail, summary=""):
        self.cmd, self.code, self.output_tail, self.summary = cmd, code, output_tail, summary
        super().__init__(f"{short(cmd)} exited {code}{' (' + summary + ')' if summary else ''}")


def child_env(database_url: str, **extra: str) -> dict:
    """The environment a developer's shell would give manage.py, pointed at ``database_url``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DBINIT_", "AISECRETARY_"))
           and k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
    env.update(AISECRETARY_ENV="development", DBINIT_STARTUP="off", DATABASE_URL=database_url)
    env.update(extra)
    return env


def manage(*args: str) -> list[str]:
    return [*MANAGE, *args]


def short(cmd: list[str]) -> str:
    """``manage.py migrate`` rather than the interpreter's and the project's full paths."""
    return " ".join(["manage.py", *cmd[len(MANAGE):]] if cmd[:len(MANAGE)] == MANAGE else cmd)


def _spawn(cmd, env):
    """Start ``cmd``; its stdout and stderr go to temporary files (no pipe to fill up)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return proc, (out, err)


def _reap(proc) -> tuple[int, int]:
    """Wait for ``proc``; return (exit code, its peak RSS in KiB)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss


def _tail(files, lines=20) -> str:
    """The last lines of stderr (of stdout when stderr is empty); closes both files."""
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read().decode("utf-8", "replace").rstrip())
        f.close()
    out, err = texts
    return "\n".join((err or "(stderr empty; stdout:)\n" + out).splitlines()[-lines:])


def _close(files):
    for f in files:
        f.close()


def timed(cmds: list[list[str]], env: dict) -> tuple[float, float]:
    """Run ``cmds`` one after another as one timed unit: (wall seconds, peak RSS MiB of any child).

    Raises :class:`CommandFailed` at the first non-zero exit.
    """
    peak_kib = 0
    start = time.perf_counter()
    for cmd in cmds:
        proc, files = _spawn(cmd, env)
        code, rss = _reap(proc)
        peak_kib = max(peak_kib, rss)
        if code != 0:
            raise CommandFailed(cmd, code, _tail(files))
        _close(files)
    return time.perf_counter() - start, peak_kib / 1024


def timed_concurrent(cmd: list[str], env: dict, processes: int) -> tuple[float, float, collections.Counter]:
    """Start ``processes`` copies of ``cmd`` at once and wait for all of them.

    Returns (wall seconds, peak RSS MiB of any child, Counter of exit codes); raises
    :class:`CommandFailed` (after all have ended) when any exited non-zero.
    """
    start = time.perf_counter()
    running = [_spawn(cmd, env) for _ in range(processes)]
    reaped = [(*_reap(proc), files) for proc, files in running]
    wall = time.perf_counter() - start
    codes = collections.Counter(code for code, _, _ in reaped)
    peak_kib = max(rss for _, rss, _ in reaped)
    failed = [(code, files) for code, _, files in reaped if code != 0]
    if failed:
        raise CommandFailed(cmd, failed[0][0], _tail(failed[0][1]), summary=f"exit codes {codes_summary(codes)}")
    for _, _, files in reaped:
        _close(files)
    return wall, peak_kib / 1024, codes


def codes_summary(codes: collections.Counter) -> str:
    return ", ".join(f"{code}×{n}" for code, n in sorted(codes.items()))


def run_untimed(cmd, env):
    """Set-up step outside any timing; fails loudly like a timed command."""
    timed([cmd], env)


# --- PostgreSQL scratch databases --------------------------------------------------------
class Postgres:
    def __init__(self, url: str):
        self.url = url
        self.prefix = f"dbinit_bench_{os.getpid()}_"
        self.created: set[str] = set()
        self._counter = 0

    def url_for(self, name: str) -> str:
        parts = urllib.parse.urlsplit(self.url)
        return urllib.parse.urlunsplit(parts._replace(path="/" + name))

    def connect(self, dbname: str | None = None):
        parts = urllib.parse.urlsplit(self.url)
        conn = psycopg2.connect(
            host=parts.hostname or "127.0.0.1", port=parts.port or 5432,
            user=urllib.parse.unquote(parts.username or "") or None,
            password=urllib.parse.unquote(parts.password or "") or None,
            dbname=dbname or parts.path.lstrip("/") or "postgres", connect_timeout=5,
        )
        conn.autocommit = True
        return conn

    def unreachable(self) -> str | None:
        try:
            self.connect().close()
            return None
        except psycopg2.Error as exc:
            return str(exc).strip().splitlines()[0]

    def query(self, sql: str, params=(), dbname: str | None = None) -> list[tuple]:
        conn = self.connect(dbname)
        try:
            with conn.cursor() as cur:
                cur.execute(sql, params)
                return cur.fetchall() if cur.description else []
        finally:
            conn.close()

    def version(self) -> str:
        return self.query("SHOW server_version")[0][0]

    def exists(self, name: str) -> bool:
        return bool(self.query("SELECT 1 FROM pg_database WHERE datname = %s", [name]))

    def new_name(self, tag: str) -> str:
        """A fresh scratch name, remembered so that :meth:`drop_all` removes it."""
        self._counter += 1
        name = f"{self.prefix}{tag}_{self._counter}"
        self.created.add(name)
        return name

    def create_from(self, name: str, template: str):
        for attempt in range(10):  # the template must have no session (autovacuum may hold one briefly)
            try:
                self.query(f'CREATE DATABASE "{name}" TEMPLATE "{template}"')
                return
            except psycopg2.errors.ObjectInUse:
                if attempt == 9:
                    raise
                time.sleep(0.5)

    def drop(self, name: str):
        self.query(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        self.created.discard(name)

    def drop_all(self):
        for name in sorted(self.created):
            try:
                self.drop(name)
            except psycopg2.Error as exc:
                log(f"  could not drop {name}: {str(exc).strip()}")


# --- comparisons -------------------------------------------------------------------------
@dataclass
class Result:
    key: str
    title: str
    target: float | None
    target_text: str = ""
    a: list[tuple[float, float]] = field(default_factory=list)  # (wall s, peak RSS MiB) per timed run
    b: list[tuple[float, float]] = field(default_factory=list)
    error: str = ""  # why the comparison has no figures (failure or skip)
    failed: bool = False
    met_override: bool | None = None  # for a comparison judged by something other than the ratio
    notes: list[str] = field(default_factory=list)

    def median(self, side):
        return statistics.median(w for w, _ in side) if side else None

    def peak(self, side):
        return max(r for _, r in side) if side else None

    @property
    def ratio(self):
        a, b = self.median(self.a), self.median(self.b)
        return a / b if a is not None and b else None

    @property
    def met(self):
        if self.error or self.ratio is None:
            return None
        if self.met_override is not None:
            return self.met_override
        return self.ratio <= self.target


def compare(result: Result, side_a, side_b, runs: int) -> Result:
    """Warm up each side once, then alternate A, B ``runs`` times; each side returns (wall, rss)."""
    log(f"\n[{result.key}] {result.title}")
    try:
        for name, side in (("A", side_a), ("B", side_b)):
            wall, rss = side()
            log(f"  warm-up {name}: {wall:.3f} s, {rss:.1f} MiB")
        for i in range(1, runs + 1):
            for name, side, store in (("A", side_a, result.a), ("B", side_b, result.b)):
                wall, rss = side()
                store.append((wall, rss))
                log(f"  run {i}/{runs} {name}: {wall:.3f} s, {rss:.1f} MiB")
    except CommandFailed as exc:
        result.failed, result.error = True, f"FAILED: {exc}"
        result.notes.append(f"Comparison {result.key} failed: {exc}:\n\n" + _indent(exc.output_tail))
        log(f"  {result.error}\n  --- stderr tail ---\n" + _indent(exc.output_tail) + "\n  -------------------")
        return result
    spread = lambda side: f"{min(w for w, _ in side):.3f}-{max(w for w, _ in side):.3f}"  # noqa: E731
    log(f"  median A {result.median(result.a):.3f} s (range {spread(result.a)}), "
        f"B {result.median(result.b):.3f} s (range {spread(result.b)}), "
        f"ratio {result.ratio:.2f} (target {result.target_text})")
    return result


def _indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.splitlines())


class Bench:
    def __init__(self, args):
        self.args = args
        self.tmp = Path(tempfile.mkdtemp(prefix="dbinit-bench-"))
        self.pg = Postgres(args.postgres_url)
        self._sqlite_template: Path | None = None
        self._n = 0

    # --- SQLite ----------------------------------------------------------------------------
    def sqlite_path(self) -> Path:
        """A new run folder with its data/ folder made; the database file itself is not created."""
        self._n += 1
        data = self.tmp / f"run{self._n}" / "data"
        data.mkdir(parents=True)
        return data / "db.sqlite3"

    def sqlite_url(self, path: Path) -> str:
        return f"sqlite:///{path}"

    def sqlite_initialised(self) -> Path:
        """A fresh copy of an initialised SQLite database (the template is built once with initdb)."""
        if self._sqlite_template is None:
            template = self.tmp / "template" / "data" / "db.sqlite3"
            template.parent.mkdir(parents=True)
            run_untimed(manage("initdb", "--noinput"), child_env(self.sqlite_url(template)))
            self._sqlite_template = template
        path = self.sqlite_path()
        shutil.copyfile(self._sqlite_template, path)
        return path

    def sqlite_side(self, prepare, cmds, **extra_env):
        def side():
            path = prepare()
            try:
                return timed(cmds, child_env(self.sqlite_url(path), **extra_env))
            finally:
                shutil.rmtree(path.parent.parent, ignore_errors=True)
        return side

    # --- comparison 1 ------------------------------------------------------------------------
    def initdb_empty_sqlite(self) -> Result:
        result = Result("1", "initdb on a missing SQLite file vs migrate + createsuperuser + check --database",
                        0.6, "<= 0.6")

        def empty():
            path = self.sqlite_path()
            if self.args.touch_sqlite:  # workaround: plain migrate refuses a missing file (dbinit.E009)
                path.touch()
            return path

        if self.args.touch_sqlite:
            result.notes.append("Comparison 1 ran with --touch-sqlite: both sides start from an empty "
                                "0-byte database file instead of a missing one.")
        a = self.sqlite_side(empty, [manage("initdb", "--noinput")])
        b = self.sqlite_side(empty, [
            manage("migrate"),
            manage("createsuperuser", "--noinput", "--email", ADMIN_EMAIL),
            manage("check", "--database", "default"),
        ], DJANGO_SUPERUSER_PASSWORD="admin123")
        return compare(result, a, b, self.args.runs)

    # --- comparison 2 ------------------------------------------------------------------------
    def initdb_initialised_sqlite(self) -> Result:
        result = Result("2", "initdb on an initialised SQLite database vs check", 1.1, "<= 1.1")
        a = self.sqlite_side(self.sqlite_initialised, [manage("initdb", "--noinput")])
        b = self.sqlite_side(self.sqlite_initialised, [manage("check")])
        return compare(result, a, b, self.args.runs)

    # --- comparison 3 ------------------------------------------------------------------------
    def dbhealth_sqlite(self) -> Result:
        result = Result("3", "dbhealth vs check --database default (initialised SQLite)", 1.3, "<= 1.3")
        a = self.sqlite_side(self.sqlite_initialised, [manage("dbhealth")])
        b = self.sqlite_side(self.sqlite_initialised, [manage("check", "--database", "default")])
        return compare(result, a, b, self.args.runs)

    # --- PostgreSQL ----------------------------------------------------------------------------
    def pg_side(self, template: str, cmds):
        """Each call: a fresh copy of ``template``, ``cmds`` timed against it, the copy dropped."""
        def side():
            name = self.pg.new_name("run")
            self.pg.create_from(name, template)
            try:
                return timed(cmds, child_env(self.pg.url_for(name)))
            finally:
                self.pg.drop(name)
        return side

    def pg_initialised_template(self) -> str:
        name = self.pg.new_name("empty")
        run_untimed(manage("initdb", "--noinput"), child_env(self.pg.url_for(name)))
        return name

    def big_database(self) -> str:
        """``dbinit_bench_1m``: initialised plus 1,000,000 users; built once, reused while it matches."""
        if self.pg.exists(BIG_DB):
            try:
                rows = self.pg.query("SELECT count(*) FROM accounts_user WHERE email LIKE %s",
                                     ["%@bench.example"], dbname=BIG_DB)[0][0]
            except psycopg2.Error:
                rows = None
            if rows == BIG_ROWS:
                log(f"  reusing cached {BIG_DB} ({rows:,} bench users)")
                # Bring it up to date if the project gained migrations since it was built.
                run_untimed(manage("initdb", "--noinput"), child_env(self.pg.url_for(BIG_DB)))
                return BIG_DB
            log(f"  cached {BIG_DB} has {rows} bench users, not {BIG_ROWS:,}: rebuilding")
            self.pg.drop(BIG_DB)
        log(f"  building {BIG_DB} (initdb, then {BIG_ROWS:,} users in one INSERT ... SELECT; cached afterwards)")
        started = time.perf_counter()
        building = self.pg.new_name("building_1m")
        run_untimed(manage("initdb", "--noinput"), child_env(self.pg.url_for(building)))
        try:
            self.pg.query(BIG_INSERT, dbname=building)
        except psycopg2.Error as exc:
            raise SystemExit(f"Bulk insert into accounts_user failed (have its columns changed? "
                             f"see BIG_INSERT in bench/bench.py): {str(exc).strip()}")
        self.pg.query("VACUUM ANALYZE accounts_user", dbname=building)
        self.pg.query(f'ALTER DATABASE "{building}" RENAME TO "{BIG_DB}"')  # appears whole or not at all
        self.pg.created.discard(building)
        log(f"  built {BIG_DB} in {time.perf_counter() - started:.1f} s")
        return BIG_DB

    # --- comparison 4 ------------------------------------------------------------------------
    def dbhealth_big_postgres(self) -> Result:
        result = Result("4", f"dbhealth on PostgreSQL with {BIG_ROWS:,} users vs empty", 1.1, "<= 1.1")
        log("\n[4] preparing templates")
        try:
            big = self.big_database()
            empty = self.pg_initialised_template()
        except CommandFailed as exc:
            result.failed, result.error = True, f"FAILED (set-up): {exc}"
            result.notes.append(f"Comparison 4 failed in its set-up: {exc}:\n\n" + _indent(exc.output_tail))
            log(f"  {result.error}\n" + _indent(exc.output_tail))
            return result
        a = self.pg_side(big, [manage("dbhealth")])
        b = self.pg_side(empty, [manage("dbhealth")])
        return compare(result, a, b, self.args.runs)

    # --- comparison 5 ------------------------------------------------------------------------
    def concurrent_initdb_postgres(self) -> Result:
        n = self.args.processes
        result = Result("5", f"{n} concurrent initdb on one missing PostgreSQL database vs 1 initdb",
                        None, f"all {n} exit 0, rows once")
        cmd = manage("initdb", "--noinput")
        problems: list[str] = []
        exit_codes = collections.Counter()

        def side_a():
            name = self.pg.new_name("race")  # not created: the processes race to create it
            try:
                wall, rss, codes = timed_concurrent(cmd, child_env(self.pg.url_for(name)), n)
                exit_codes.update(codes)
                log(f"    exit codes: {codes_summary(codes)}")
                found = self.verify_seeded_once(name)
                log("    verify: " + ("; ".join(found) if found else "each seed row once, no migration twice"))
                problems.extend(found)
                return wall, rss
            finally:
                self.pg.drop(name)

        def side_b():
            name = self.pg.new_name("single")
            try:
                return timed([cmd], child_env(self.pg.url_for(name)))
            finally:
                self.pg.drop(name)

        compare(result, side_a, side_b, self.args.concurrent_runs)
        if not result.error:
            result.met_override = not problems
            result.notes.append(f"Comparison 5: exit codes over all {n}-process runs (warm-up included): "
                                f"{codes_summary(exit_codes)}; SQL verification: "
                                + ("; ".join(sorted(set(problems))) if problems
                                   else "one 'system' tenant, 3 roles, one admin, no migration recorded twice, "
                                        "in every run."))
        return result

    def verify_seeded_once(self, name: str) -> list[str]:
        """What is wrong with the seed rows and the migration records of database ``name``."""
        q = lambda sql, params=(): self.pg.query(sql, params, dbname=name)  # noqa: E731
        found = []
        tenants = q("SELECT count(*) FROM tenants_tenant WHERE slug = 'system'")[0][0]
        if tenants != 1:
            found.append(f"{tenants} 'system' tenants")
        roles, slugs = q("SELECT count(*), count(DISTINCT slug) FROM accounts_role")[0]
        if (roles, slugs) != (3, 3):
            found.append(f"{roles} roles ({slugs} distinct slugs), expected 3")
        admins = q("SELECT count(*) FROM accounts_user WHERE lower(email) = lower(%s)", [ADMIN_EMAIL])[0][0]
        if admins != 1:
            found.append(f"{admins} admin users")
        twice = q("SELECT app, name, count(*) FROM django_migrations GROUP BY 1, 2 HAVING count(*) > 1")
        if twice:
            found.append("migrations recorded more than once: " + ", ".join(f"{a}.{m}×{c}" for a, m, c in twice))
        return found

    def cleanup(self):
        if self.pg.created:
            log(f"\nDropping {len(self.pg.created)} scratch PostgreSQL database(s)")
            self.pg.drop_all()
        shutil.rmtree(self.tmp, ignore_errors=True)


# --- report ------------------------------------------------------------------------------
COLUMNS = ["comparison", "A median (s)", "B median (s)", "ratio", "target", "met",
           "A peak RSS (MiB)", "B peak RSS (MiB)"]


def table(results: list[Result]) -> str:
    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    rows = []
    for r in results:
        if r.error:
            rows.append([f"{r.key}. {r.title}", "", "", "", r.target_text, r.error.split(":")[0], "", ""])
            continue
        rows.append([f"{r.key}. {r.title}", fmt(r.median(r.a), ".3f"), fmt(r.median(r.b), ".3f"),
                     fmt(r.ratio, ".2f"), r.target_text, "yes" if r.met else "no",
                     fmt(r.peak(r.a), ".1f"), fmt(r.peak(r.b), ".1f")])
    widths = [max(len(COLUMNS[i]), *(len(row[i]) for row in rows)) for i in range(len(COLUMNS))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def machine(pg_version: str | None, args) -> str:
    return (f"Machine: nproc {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg_version or 'not used'}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}; {args.runs} runs per side "
            f"({args.concurrent_runs} for comparison 5), medians of wall time.")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each side (default 7)")
    parser.add_argument("--quick", action="store_true", help="3 runs of each side")
    parser.add_argument("--concurrent-runs", type=int, default=None,
                        help="timed runs of each side of comparison 5 (default 3, at most --runs)")
    parser.add_argument("--processes", type=int, default=32, help="concurrent initdb processes (default 32)")
    parser.add_argument("--only", default="1,2,3,4,5", help="comparisons to run, e.g. 1,3 (default all)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help=f"a PostgreSQL server's maintenance database (default {DEFAULT_POSTGRES_URL}, "
                             "or $BENCH_POSTGRES_URL)")
    parser.add_argument("--touch-sqlite", action="store_true",
                        help="comparison 1: start both sides from an empty 0-byte SQLite file instead of "
                             "a missing one (plain migrate may refuse a missing file)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.concurrent_runs = args.concurrent_runs or min(3, args.runs)
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    return args


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the clean-up below runs
    started = time.perf_counter()
    bench = Bench(args)
    results: list[Result] = []
    pg_version = None
    try:
        log(f"Benchmarking with {sys.executable} ({args.runs} runs per side; scratch files in {bench.tmp})")
        plan = [("1", bench.initdb_empty_sqlite), ("2", bench.initdb_initialised_sqlite),
                ("3", bench.dbhealth_sqlite), ("4", bench.dbhealth_big_postgres),
                ("5", bench.concurrent_initdb_postgres)]
        unreachable = bench.pg.unreachable() if args.only & {"4", "5"} else None
        if not unreachable and args.only & {"4", "5"}:
            pg_version = bench.pg.version()
        for key, run in plan:
            if key not in args.only:
                continue
            if key in ("4", "5") and unreachable:
                log(f"\n[{key}] skipped: no PostgreSQL server at {args.postgres_url} ({unreachable})")
                results.append(Result(key, "needs PostgreSQL", None, error="skipped: PostgreSQL not reachable"))
                continue
            results.append(run())
    finally:
        bench.cleanup()
    total = time.perf_counter() - started

    report = table(results)
    notes = [note for r in results for note in r.notes]
    log("\n" + report)
    for note in notes:
        log("\n" + note)
    log("\n" + machine(pg_version, args))
    log(f"Whole run: {total:.0f} s.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("# dbinit benchmark\n\n" + report + "\n\n"
                       + "".join(note + "\n\n" for note in notes)
                       + machine(pg_version, args) + f" Whole run {total:.0f} s.\n")
    log(f"Written to {RESULTS.relative_to(ROOT)}.")
    failed = [r for r in results if r.failed]
    if failed:
        log(f"A command failed in comparison(s) {', '.join(r.key for r in failed)}: exit status 1.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
