"""A curated mutation check: break one promise at a time and make sure a test notices.

Each entry of ``MUTATIONS`` is a behaviour the project promises, written as a source
edit that breaks it (a file, an exact text that must occur there exactly once, its
replacement) and the tests that must then fail. For every mutation and every engine
(SQLite, then PostgreSQL; a promise that exists on one engine only, such as the
PostgreSQL lease, names it in ``engines``) the script applies the edit, runs those tests, and restores
the file (``try``/``finally``, whatever happens). A mutation is *killed* when the tests
fail, *survived* when they pass. Exit status 0 only if every mutation is killed on
every engine.

The list is kept in step with the code: before anything runs, every ``old`` text must
occur exactly once in its file, or the script stops and says which entry to update.
It refuses to start when one of the files has uncommitted changes (a restore must
never be able to lose work), and first runs every listed test on the unmutated code
(a test that already fails would "kill" anything).

Usage: ``python tools/mutation.py [--engine sqlite|postgresql] [--only TEXT ...] [--list] [--no-baseline]``
(``make mutation`` runs it on both engines). Not part of ``make test``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
POSTGRES_URL = os.environ.get("TEST_POSTGRES_URL", "postgres://root@127.0.0.1:5432/postgres")


@dataclass(frozen=True)
class Mutation:
    name: str  # the promise it breaks
    file: str
    old: str
    new: str
    tests: tuple[str, ...]  # node ids that must fail once it is applied
    engines: tuple[str, ...] = ("sqlite", "postgresql")  # where the promise exists (the lease is PostgreSQL's)


MUTATIONS = [
    Mutation(
        "the initialisation lock is taken",
        "dbinit/initializer.py",
        "info = self.stack.enter_context(initialization_lock(\n"
        "            self.connection, settings.DBINIT_LOCK_TIMEOUT, purpose=self.trigger,\n"
        "            already_done=self._done_as_last_verified))",
        "info = self.stack.enter_context(__import__('contextlib').nullcontext(\n"
        "            __import__('dbinit.locking', fromlist=['LockInfo']).LockInfo(kind='none')))",
        ("tests/test_concurrency.py::test_lock_held_too_long_ends_in_its_id",),
    ),
    Mutation(
        "a lease waiter asks whether the holder did the work before taking the lease",
        "dbinit/locking.py",
        "        if info.contended and _done(already_done):\n"
        "            info.held = None\n"
        "            break\n"
        "        taken, holder = _try_acquire(connection, token, purpose)\n"
        "        if taken:\n"
        "            if info.contended and _done(already_done):  # the holder finished just before: give it back\n"
        "                _release_lease(connection, token)\n"
        "                info.held = None\n"
        "            break\n",
        "        taken, holder = _try_acquire(connection, token, purpose)\n"
        "        if taken:\n"
        "            break\n",
        ("tests/test_concurrency.py::test_waiters_find_the_work_done_without_taking_the_lock_in_turn",),
        engines=("postgresql",),
    ),
    Mutation(
        "a waiter does not load the migration graph while another process holds the lock",
        "dbinit/initializer.py",
        "if not self.database_missing and not held_by_another_process(self.connection):",
        "if not self.database_missing:",
        ("tests/test_concurrency.py::test_a_waiter_loads_no_migration_graph_while_another_process_holds_the_lock",),
    ),
    Mutation(
        "a template an older dbinit made is rebuilt, not copied",
        "dbinit/templates.py",
        "if not reason and stamp.get(\"format\", 1) != FORMAT:",
        "if False:",
        ("tests/test_templates.py::test_a_template_an_older_dbinit_made_is_rebuilt_not_patched",),
        engines=("postgresql",),  # SQLite's format is in the file's name
    ),
    Mutation(
        "a _like index does not stand in for the plain index on its column",
        "dbinit/drift.py",
        'special = catalogue.partial_indexes | (catalogue.opclass_index_names if kind == "index" else set())',
        "special = catalogue.partial_indexes",
        ("tests/test_thirdparty.py::test_damage_is_named_dry_run_changes_nothing_and_repair_keeps_every_row"
         "[dropped_plain_index_beside_its_like_index]",),
        engines=("postgresql",),  # SQLite has no _like index
    ),
    Mutation(
        "checksums are of the file's content",
        "dbinit/migrations_state.py",
        "return hashlib.sha256(fh.read()).hexdigest()",
        "return hashlib.sha256(str(path).encode()).hexdigest()",
        ("tests/test_checksums.py",),
    ),
    Mutation(
        "seeding never overwrites (an existing admin keeps its password)",
        "dbinit/seeding.py",
        """    if User.objects.using(using).with_email(email).exists():
        report.skipped.append(f"admin:{email}")
        return
""",
        """    if User.objects.using(using).with_email(email).exists():
        admin = User.objects.using(using).with_email(email).get()
        admin.set_password(password or "")
        admin.save(using=using)
        report.skipped.append(f"admin:{email}")
        return
""",
        ("tests/test_initdb.py::test_seeding_keeps_what_an_operator_changed",),
    ),
    Mutation(
        "a dry run writes nothing",
        "dbinit/repair.py",
        "if refused or dry_run or not actions:",
        "if refused or not actions:",
        ("tests/test_repair.py::test_dry_run_changes_nothing",),
    ),
    Mutation(
        "passwords are masked (a literal secret in driver text)",
        "dbinit/configuration.py",
        "            text = text.replace(secret, MASK)\n",
        "",
        ("tests/test_scrub.py",),
    ),
    Mutation(
        "a generated password is never logged",
        "dbinit/seeding.py",
        'logger.info("Created the admin user %s", email)',
        'logger.info("Created the admin user %s (password %s)", email, password)',
        ("tests/test_initdb.py::test_production_without_a_password_generates_one_shown_once",),
    ),
    Mutation(
        "the production guard (resetdb refuses without --force)",
        "dbinit/management/commands/resetdb.py",
        'if production and not options["force"]:',
        "if False:",
        ("tests/test_resetdb.py::test_production_refuses_without_force",),
    ),
    Mutation(
        "the production guard (the well-known admin password is refused)",
        "dbinit/configuration.py",
        'if environment == "production" and password == WELL_KNOWN_PASSWORD:',
        "if False:",
        ("tests/test_initdb.py::test_production_refuses_the_well_known_password",),
    ),
    Mutation(
        "check mode refuses pending migrations",
        "dbinit/startup.py",
        "BLOCKING_WARNINGS = {errors.W020.id, errors.W024.id, errors.W029.id}",
        "BLOCKING_WARNINGS = {errors.W024.id, errors.W029.id}",
        # The WSGI one first: with -x it fails in seconds, while runserver would serve until its timeout.
        ("tests/test_startup.py::test_production_defaults_to_check_and_stops_on_pending_migrations",
         "tests/test_startup.py::test_runserver_check_mode_refuses_a_database_with_pending_migrations"),
    ),
    Mutation(
        "kill -9 recovery (initdb finishes an interrupted post-migrate)",
        "dbinit/initializer.py",
        "                migrations_state.apply(self.executor, [], on_event=self.on_event)\n",
        "                pass\n",
        ("tests/test_concurrency.py::test_kill_9_inside_post_migrate_is_healed_by_the_next_initdb",),
    ),
    Mutation(
        "the database router is respected",
        "dbinit/drift.py",
        "return is_concrete(model) and hosts_model(self.connection.alias, model)",
        "return is_concrete(model)",
        ("tests/test_health.py::test_a_model_the_router_keeps_elsewhere_is_not_expected",),
    ),
    Mutation(
        "role groups that lost their permissions are reported",
        "dbinit/health.py",
        "    emptied = role_groups_without_permissions(ctx.alias) if",
        "    emptied = [] if",
        ("tests/test_repair.py::test_role_groups_that_lost_their_permissions_are_reported_and_restored",),
    ),
    Mutation(
        "reference rows of a pending data migration are pending, not missing",
        "dbinit/seeding.py",
        "if self.tenant_missing and Tenant._meta.app_label not in pending_apps:",
        "if self.tenant_missing:",
        ("tests/test_health.py::test_pending_migrations_are_a_warning",),
    ),
    Mutation(
        "only the templates of the same engine, alias and schema settings are removed as older history",
        "dbinit/templates.py",
        "if isinstance(f.stamp.get(\"digest\"), str) and _lineage(f.stamp) == _lineage(fp.parts)]",
        "if isinstance(f.stamp.get(\"digest\"), str)]",
        ("tests/test_templates.py::test_building_a_template_removes_older_migration_sets_beyond_DBINIT_TEMPLATE_KEEP",
         "tests/test_templates.py::test_building_a_seeded_template_keeps_the_newest_seeds_of_its_migration_set"),
    ),
    Mutation(
        "a kept migration set's seeded templates are bounded by DBINIT_TEMPLATE_KEEP too",
        "dbinit/templates.py",
        "for f in sorted(variants, key=lambda f: f.built, reverse=True)[keep:]]",
        "for f in sorted(variants, key=lambda f: f.built, reverse=True)[len(variants):]]",
        ("tests/test_templates.py::test_building_a_seeded_template_keeps_the_newest_seeds_of_its_migration_set",),
    ),
    Mutation(
        "files are private (database, lock file and backups readable by their owner only)",
        "dbinit/private.py",
        "FILE_MODE = 0o600",
        "FILE_MODE = 0o644",
        ("tests/test_password_file.py::test_generated_password_is_written_to_a_private_file",),
    ),
]

ENGINES = {
    "sqlite": {"AISECRETARY_ENV": "testing", "DATABASE_URL": None},
    "postgresql": {"AISECRETARY_ENV": "testing", "DATABASE_URL": POSTGRES_URL, "TEST_POSTGRES_URL": POSTGRES_URL,
                   "REQUIRE_POSTGRES": "1"},
}


def check_list(mutations) -> list[str]:
    """Why the list is out of step with the code (empty when every old text occurs once)."""
    problems = []
    for m in mutations:
        path = ROOT / m.file
        if not path.exists():
            problems.append(f"{m.name}: {m.file} does not exist")
            continue
        count = path.read_text().count(m.old)
        if count != 1:
            problems.append(f"{m.name}: the text to mutate occurs {count} times in {m.file} (must be once): "
                            f"{m.old.strip()!r}")
    return problems


def dirty_files(files) -> list[str]:
    proc = subprocess.run(["git", "status", "--porcelain", "--", *sorted(files)], cwd=ROOT, capture_output=True,
                          text=True, check=True)
    return [line[3:] for line in proc.stdout.splitlines()]


def run_tests(tests, engine) -> tuple[str, float]:
    env = {k: v for k, v in os.environ.items() if k not in ("DATABASE_URL", "DJANGO_SETTINGS_MODULE")}
    env.update({k: v for k, v in ENGINES[engine].items() if v is not None})
    env["PYTHONDONTWRITEBYTECODE"] = "1"  # no .pyc of a mutant is ever left behind
    start = time.monotonic()
    proc = subprocess.run([sys.executable, "-m", "pytest", "-x", "-q", "-p", "no:cacheprovider", *tests],
                          cwd=ROOT, env=env, capture_output=True, text=True)
    elapsed = time.monotonic() - start
    # pytest: 0 all passed, 1 some failed; anything else (usage error, nothing collected) is ours.
    if proc.returncode == 0:
        skipped = " skipped" in proc.stdout.splitlines()[-1] if proc.stdout.strip() else False
        return ("survived (tests skipped)" if skipped else "survived"), elapsed
    if proc.returncode == 1:
        return "killed", elapsed
    tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-5:])
    return f"error (pytest exit {proc.returncode}: {tail})", elapsed


def apply_and_run(mutation, engines) -> dict[str, tuple[str, float]]:
    engines = [e for e in engines if e in mutation.engines]
    if not engines:
        return {}
    path = ROOT / mutation.file
    original = path.read_bytes()
    stat = path.stat()
    results = {}
    try:
        path.write_text(original.decode().replace(mutation.old, mutation.new, 1))
        for engine in engines:
            results[engine] = run_tests(mutation.tests, engine)
    finally:
        path.write_bytes(original)
        os.utime(path, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    return results


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--engine", choices=list(ENGINES), action="append", help="default: both")
    parser.add_argument("--only", nargs="+", metavar="TEXT", help="mutations whose name contains TEXT")
    parser.add_argument("--list", action="store_true", help="list the mutations and exit")
    parser.add_argument("--no-baseline", action="store_true",
                        help="skip the first run of the listed tests on the unmutated code")
    args = parser.parse_args(argv)
    mutations = [m for m in MUTATIONS if not args.only or any(t in m.name for t in args.only)]
    engines = args.engine or list(ENGINES)
    if args.list:
        for m in mutations:
            print(f"{m.name}\n    {m.file}: {m.old.strip()!r} -> {m.new.strip()!r}\n    killed by: {' '.join(m.tests)}")
        return 0
    problems = check_list(mutations)
    if problems:
        print("The mutation list is out of step with the code; update tools/mutation.py:", file=sys.stderr)
        print("\n".join(f"  - {p}" for p in problems), file=sys.stderr)
        return 2
    dirty = dirty_files({m.file for m in mutations})
    if dirty:
        print(f"Refusing to mutate files with uncommitted changes: {', '.join(dirty)}", file=sys.stderr)
        return 2

    started = time.monotonic()
    if not args.no_baseline:
        # A mutant is only "killed" if its tests pass without it.
        for engine in engines:
            tests = sorted({t for m in mutations if engine in m.engines for t in m.tests})
            if not tests:
                continue
            outcome, elapsed = run_tests(tests, engine)
            print(f"baseline ({engine}, {len(tests)} test selections, unmutated): "
                  f"{'pass' if outcome == 'survived' else outcome} ({elapsed:.0f} s)", flush=True)
            if outcome != "survived":
                print("The listed tests must pass on the unmutated code first.", file=sys.stderr)
                return 2
    rows = []
    for m in mutations:
        results = apply_and_run(m, engines)
        rows.append((m, results))
        print(f"{m.name}: " + (", ".join(f"{e} {r[0]} ({r[1]:.0f} s)" for e, r in results.items())
                               or "nothing to run on the chosen engines"), flush=True)
    if dirty_files({m.file for m in mutations}):  # the finally blocks restore; say so loudly if not
        print("A mutated file was not restored: check git diff", file=sys.stderr)
        return 2

    width = max(len(m.name) for m, _ in rows)
    print()
    print(f"| {'mutation (the promise it breaks)':<{width}} | " + " | ".join(f"{e:<10}" for e in engines) + " |")
    print(f"|{'-' * (width + 2)}|" + "|".join("-" * 12 for _ in engines) + "|")
    for m, results in rows:
        print(f"| {m.name:<{width}} | " + " | ".join(
            f"{results[e][0].split(' (')[0] if e in results else 'n/a':<10}" for e in engines) + " |")
    survived = [(m.name, e) for m, results in rows for e, (outcome, _) in results.items() if outcome != "killed"]
    total = sum(len(results) for _, results in rows)
    print(f"\n{total - len(survived)} of {total} killed in {time.monotonic() - started:.0f} s.")
    for name, engine in survived:
        print(f"NOT KILLED: {name} ({engine}): {dict(rows[[m.name for m, _ in rows].index(name)][1])[engine][0]}")
    return 1 if survived else 0


if __name__ == "__main__":
    sys.exit(main())
