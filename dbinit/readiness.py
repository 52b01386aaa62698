"""Readiness: may this process serve from this database now? (Kubernetes' readiness probe, ``dbhealth --wait``.)

Ready means: the database answers, every migration of *this release* is recorded, and the
reference rows (system tenant, system roles) exist. A database *ahead* of this release
(migrations recorded that this code does not have: a newer release migrated it during a
rolling deploy) is ready, with ``W063``: old pods keep serving until they are replaced.

The cost is fixed whatever the data: the migration files are read once per process (the code
does not change under a running process) and each probe runs one query on
``django_migrations`` plus the seed lookups by unique key.
"""

from __future__ import annotations

import functools
import time
from dataclasses import dataclass, field

from django.db import DatabaseError, connections

from . import database as db
from . import errors
from .errors import DbinitError

CHECKS = ("database", "migrations", "seed")


@dataclass
class Problem:
    """One problem a readiness check found, and whether it blocks serving."""

    check: str
    error: DbinitError
    blocking: bool  # the database is not ready for this release (a W020 here blocks, a W063 does not)


@dataclass
class Readiness:
    """The readiness verdict: the checks that passed and the problems found."""

    passed: list[str] = field(default_factory=list)  # checks that ran and found nothing blocking
    problems: list[Problem] = field(default_factory=list)
    duration_ms: float = 0.0

    @property
    def ready(self) -> bool:
        return list(self.passed) == list(CHECKS)

    @property
    def warnings(self) -> list[DbinitError]:
        return [p.error for p in self.problems if not p.blocking]

    def summary(self) -> dict[str, str]:
        """Check name -> ok/fail: all an anonymous client sees."""
        return {name: "ok" if name in self.passed else "fail" for name in CHECKS}

    def as_dict(self, details=False) -> dict:
        out = {"status": "ok" if self.ready else "fail", "checks": self.summary()}
        if details:
            out["problems"] = [{**p.error.as_dict(), "check": p.check, "blocking": p.blocking}
                               for p in self.problems]
            out["duration_ms"] = round(self.duration_ms, 1)
        return out

    def add(self, check: str, *problems: tuple[DbinitError, bool]):
        self.problems += [Problem(check, error, blocking) for error, blocking in problems]
        if not any(blocking for _, blocking in problems):
            self.passed.append(check)


@functools.cache
def release_migrations() -> tuple[frozenset, dict]:
    """This release's migrations on disk: (keys, squashed key -> the keys it replaces). Read once."""
    from django.db.migrations.loader import MigrationLoader

    loader = MigrationLoader(None, ignore_no_migrations=True)
    replaces = {key: frozenset(m.replaces) for key, m in loader.disk_migrations.items() if m.replaces}
    return frozenset(loader.disk_migrations), replaces


def migration_state(applied: set) -> tuple[list[str], list[str]]:
    """(this release's migrations not recorded, recorded migrations this release does not know)."""
    known, replaces = release_migrations()
    replaced = {k for keys in replaces.values() for k in keys}
    missing = []
    for key in sorted(known):
        if key in applied:
            continue
        if key in replaces and replaces[key] <= applied:
            continue  # a squash whose replaced migrations are all recorded
        if key in replaced and any(key in keys and squash in applied for squash, keys in replaces.items()):
            continue  # replaced by a squash that is recorded
        missing.append(f"{key[0]}.{key[1]}")
    ahead = sorted(f"{a}.{n}" for a, n in applied - known - replaced)
    return missing, ahead


def check(alias="default", connect_timeout: float = 0.0) -> Readiness:
    """Whether ``alias`` is ready for this release; never raises for a database problem."""
    from django.db.migrations.recorder import MigrationRecorder

    from .seeding import SeedState

    start = time.perf_counter()
    result = Readiness()
    check_name = "database"
    try:
        path = db.sqlite_path(connections[alias].settings_dict) if connections[alias].vendor == "sqlite" else None
        if path is not None and not db.check_sqlite_file(path, step="readiness"):
            # Connecting would create an empty file: a probe must not.
            raise DbinitError(errors.E009, name=str(path))
        db.connect(alias, timeout=connect_timeout, step="readiness")
        result.add("database")
        check_name = "migrations"
        # The recorder's own read (one query), not a hand-written one; no table: nothing applied.
        recorder = MigrationRecorder(connections[alias])
        applied = set(recorder.applied_migrations()) if recorder.has_table() else set()
        missing, ahead = migration_state(applied)
        problems = []
        if missing:
            problems.append((DbinitError(errors.W020, count=len(missing), migrations=_short(missing)), True))
        if ahead:
            problems.append((DbinitError(errors.W063, count=len(ahead), migrations=_short(ahead)), False))
        result.add("migrations", *problems)
        if missing:
            return result
        check_name = "seed"
        # The reference rows (system tenant, roles), owned by SeedState; the admin is dbhealth's W040.
        result.add("seed", *[(error, True) for error in SeedState.read(alias).problems()])
    except DbinitError as exc:
        if db.is_missing_database(exc):
            exc = DbinitError(errors.E009, name=exc.context.get("name"))
        result.add(check_name, (exc, True))
    except DatabaseError as exc:  # e.g. no django_migrations table yet: nothing is migrated
        error, _ = db.classify(exc, alias, f"readiness check {check_name}")
        result.add(check_name, (error, True))
    finally:
        result.duration_ms = (time.perf_counter() - start) * 1000
    return result


def _short(items, limit=6) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def wait(alias="default", timeout: float = 60.0, on_attempt=None) -> Readiness:
    """Check until ready or ``timeout`` seconds passed; ``on_attempt(number, readiness)`` after each."""
    deadline = time.monotonic() + timeout
    attempt, delay = 0, 0.5
    while True:
        attempt += 1
        result = check(alias)
        if on_attempt:
            on_attempt(attempt, result)
        remaining = deadline - time.monotonic()
        if result.ready or remaining <= 0:
            return result
        connections[alias].close()
        time.sleep(min(delay, remaining))
        delay = min(delay * 2, 5.0)
