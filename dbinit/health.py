"""Health checks: one set of checks for dbhealth, ``manage.py check``, /health/ and dbrepair.

A check is a small function taking a :class:`HealthContext` and returning
findings (catalogue id, message, hint, and the context a repair needs). The
runner times each check and collects a :class:`HealthReport`. Checks ask the
owners of each rule (``configuration.validate_configuration``,
``seeding.SeedState``, ``history``, ``locking``) rather than re-deriving it, and
take every text, problems and OK results alike, from the catalogue. No check
reads rows of user tables: existence tests use ``EXISTS``-style queries and the
schema comes from the catalogue, so the cost does not grow with the data.

To add a check: write ``check_NAME(ctx) -> list[Finding]`` below, add it to
:data:`CHECKS`, give its problems (and its OK result) catalogue entries, and
test it against a real, damaged database.
"""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field, replace
from functools import cached_property

from django.conf import settings
from django.core.signals import setting_changed
from django.db import DEFAULT_DB_ALIAS, DatabaseError, connections
from django.dispatch import receiver

from . import database as db
from . import errors, routing
from . import sqlite as sqlite_settings
from .configuration import describe_database
from .django_private import executor_reading_files_once
from .errors import DbinitError

logger = logging.getLogger("dbinit")

# Severity order, as in django.core.checks (DEBUG 10 .. CRITICAL 50).
LEVEL_NUMBERS = {"debug": 10, "info": 20, "ok": 20, "warning": 30, "error": 40, "critical": 50}
SQLITE_QUICK_CHECK_MAX_BYTES = 64 * 1024 * 1024
SLOW_ROUND_TRIP_MS = 250.0


@dataclass
class Finding:
    """One result line: a catalogue id, the status it implies, and a message a person can act on."""

    check: str
    id: str
    status: str  # ok, info, warning, error, critical
    message: str
    hint: str = ""
    duration_ms: float = 0.0
    context: dict = field(default_factory=dict)
    repair: str | None = None  # the dbrepair action that fixes it (from the catalogue)

    @classmethod
    def problem(cls, check, error: DbinitError, **context) -> Finding:
        """A finding for ``error``; ``context`` adds what a repair needs (lists, not text)."""
        return cls(check=check, id=error.code, status=error.level, message=error.message, hint=error.hint,
                   context={**error.context, **context}, repair=error.entry.repair)

    @classmethod
    def result(cls, check, entry: errors.Entry, status="ok", **context) -> Finding:
        """An OK or informational finding, its text taken from ``entry``."""
        return cls(check=check, id=entry.id, status=status, message=entry.format(**context), context=context)

    @property
    def fixable(self) -> bool:
        return self.repair is not None

    @property
    def level_number(self) -> int:
        return LEVEL_NUMBERS[self.status]

    def as_dict(self) -> dict:
        return {"id": self.id, "check": self.check, "status": self.status, "message": self.message,
                "hint": self.hint, "duration_ms": round(self.duration_ms, 1)}


@dataclass
class HealthReport:
    """The findings of one health run on one database, with its worst status."""

    database: dict
    findings: list[Finding] = field(default_factory=list)
    duration_ms: float = 0.0
    pending_apps: set = field(default_factory=set)  # apps with migrations still to apply

    @property
    def status(self) -> str:
        worst = max((f.level_number for f in self.findings), default=20)
        return "error" if worst >= 40 else "warning" if worst >= 30 else "ok"

    def problems(self, min_level="warning") -> list[Finding]:
        floor = LEVEL_NUMBERS[min_level]
        return [f for f in self.findings if f.level_number >= floor]

    def as_dict(self) -> dict:
        return {"status": self.status, "database": self.database, "duration_ms": round(self.duration_ms, 1),
                "checks": [f.as_dict() for f in self.findings]}


class HealthContext:
    """What the checks share for one database: the connection and one migration loader."""

    def __init__(self, alias="default", connect_timeout=0.0, hash_passwords=False, trust_fingerprint=False,
                 read_only_answer=None):
        self.alias = alias
        self.connect_timeout = connect_timeout
        # Commands and start-up may hash the well-known password (once per hash value);
        # the /health/ probe never does: it reads the remembered verdicts only.
        self.hash_passwords = hash_passwords
        self.trust_fingerprint = trust_fingerprint
        self.reachable = False
        # Why dbinit must not write here (replica), from the settings; the server adds its own.
        self.read_only = routing.configured_read_only_reason(alias) if alias in settings.DATABASES else None
        # What the server said of itself when the caller just asked it (start-up): not asked again.
        reason, self.server_asked = read_only_answer or (None, False)
        self.read_only = self.read_only or reason

    @property
    def connection(self):
        return connections[self.alias]

    @cached_property
    def executor(self):
        # Migration files read once per process: the probe must not list and re-import every
        # migration module on each request (about 4 ms of a 14 ms /health/).
        return executor_reading_files_once(self.connection)

    @cached_property
    def verified(self):
        """The fingerprint, when trusted and the migration set is as last verified (no graph needed)."""
        from .fingerprint import unchanged

        return unchanged(self.connection, once_per_process=True) if self.trust_fingerprint else None

    @cached_property
    def pending(self) -> list:
        if self.verified:
            return []
        from .migrations_state import pending_migrations

        return pending_migrations(self.executor)

    @cached_property
    def pending_apps(self) -> set[str]:
        return {m.app_label for m in self.pending}

    @cached_property
    def catalogue(self):
        """The database's schema as Django's introspection reads it (tables and columns first,
        constraints only when a check asks)."""
        from .schema import Catalogue

        return Catalogue(self.connection)

    @cached_property
    def applied_state(self):
        """(state of the applied migrations, pending ones it had to include): see verification."""
        from .verification import applied_state

        return applied_state(self.executor)

    @cached_property
    def verification(self):
        """What the schema says about each pending migration (lost records, partly applied)."""
        from .verification import verify

        return verify(self.executor, self.catalogue, self.applied_state)

    def has_table(self, model) -> bool:
        """Whether ``model``'s table exists (the catalogue's first read: tables and columns, one query)."""
        return self.catalogue.has_table(model._meta.db_table)


# --- configuration checks (no database) ----------------------------------------------
# alias -> the configuration findings: they depend on the settings alone, which a process reads
# once, so each process judges them once (a probe does not redo it per request); tests'
# override_settings forgets them.
_configuration: dict[str, list[Finding]] = {}


@receiver(setting_changed)
def _forget_configuration(**kwargs):
    _configuration.clear()


def check_configuration(ctx: HealthContext) -> list[Finding]:
    from .configuration import validate_configuration

    if ctx.alias not in _configuration:
        problems = validate_configuration(ctx.alias)
        if problems:
            found = [Finding.problem("configuration", error) for error in problems]
        else:
            desc = describe_database(connections.settings[ctx.alias], ctx.alias)
            found = [Finding.result("configuration", errors.I006, environment=settings.AISECRETARY_ENV,
                                    vendor=desc.vendor, target=desc.target())]
        _configuration[ctx.alias] = found
    # Copies: the runner and the read-only hints change findings in place.
    return [replace(f, context=dict(f.context)) for f in _configuration[ctx.alias]]


# --- database checks ------------------------------------------------------------------
def check_connectivity(ctx: HealthContext) -> list[Finding]:
    name = "connectivity"
    vendor = ctx.connection.vendor
    if vendor == "sqlite":
        path = db.sqlite_path(ctx.connection.settings_dict)
        if path is not None:
            try:
                if not db.check_sqlite_file(path, step="health"):
                    # Connecting would create an empty file: a health check must not.
                    return [Finding.problem(name, _missing(ctx, DbinitError(errors.E009, name=str(path),
                                                                            vendor="sqlite")))]
            except DbinitError as exc:
                return [Finding.problem(name, exc)]
    try:
        info = db.connect(ctx.alias, timeout=ctx.connect_timeout, step="health")
        db.check_server_version(ctx.connection, step="health")
    except DbinitError as exc:
        if db.is_missing_database(exc):
            exc = _missing(ctx, DbinitError(errors.E009, name=exc.context.get("name")))
        return [Finding.problem(name, exc)]
    ctx.reachable = True
    found = [Finding.result(name, errors.I001, vendor=info.vendor, version=info.version,
                            ms=f"{info.round_trip_ms:.1f}")]
    if not ctx.server_asked:
        ctx.read_only = ctx.read_only or routing.server_read_only_reason(ctx.connection)
    if ctx.read_only:
        found.append(Finding.result(name, errors.I020, alias=ctx.alias, reason=ctx.read_only))
    if info.round_trip_ms > SLOW_ROUND_TRIP_MS:
        found.append(Finding.problem(name, DbinitError(errors.W051, ms=f"{info.round_trip_ms:.0f}")))
    return found


def check_replication(ctx: HealthContext) -> list[Finding]:
    """A read-only alias: how far its server is behind the primary (see dbinit.replication)."""
    from . import replication

    name = "replication"
    if not ctx.read_only:
        return []  # dbinit writes there: no primary to lag behind, and no query
    lag = replication.measure(ctx.connection)
    if lag is None:
        vendor = ctx.connection.vendor
        why = {"sqlite": "SQLite has no replication",
               "postgresql": "its server is not in recovery"}.get(vendor, f"dbinit does not measure {vendor}'s lag")
        return [Finding.result(name, errors.I030, status="info", alias=ctx.alias, why=why)]
    limit = f"{settings.DBINIT_REPLICA_MAX_LAG:g}"
    if lag.over(settings.DBINIT_REPLICA_MAX_LAG):
        return [Finding.problem(name, DbinitError(errors.W074, alias=ctx.alias, lag=lag.describe(), limit=limit))]
    return [Finding.result(name, errors.I029, status="info" if lag.seconds is None else "ok", alias=ctx.alias,
                           lag=lag.describe(), limit=limit)]


def _missing(ctx: HealthContext, error: DbinitError) -> DbinitError:
    """A missing database: initdb creates it, unless the alias is read-only to dbinit."""
    if not ctx.read_only:
        return error
    return DbinitError(errors.E075, name=error.context.get("name"), alias=ctx.alias,
                       primary=routing.primary_of(ctx.alias))


def check_engine(ctx: HealthContext) -> list[Finding]:
    name = "engine"
    conn = ctx.connection
    details, found = [], []
    with conn.cursor() as cursor:
        if conn.vendor == "sqlite":
            path = db.sqlite_path(conn.settings_dict)
            in_force = sqlite_settings.settings_in_force(conn)
            details.append(sqlite_settings.describe(in_force))
            if settings.AISECRETARY_ENV == "production" and path is not None:
                found += [Finding.problem(name, p) for p in
                          sqlite_settings.production_problems(in_force, str(path), ctx.alias)]
            if path is not None:
                size = path.stat().st_size if path.exists() else 0
                if size <= SQLITE_QUICK_CHECK_MAX_BYTES:
                    cursor.execute("PRAGMA quick_check(5)")
                    result = "; ".join(r[0] for r in cursor.fetchall())
                    if result != "ok":
                        found.append(Finding.problem(name, DbinitError(errors.E050, path=str(path), reason=result)))
                    else:
                        details.append("quick_check ok")
                else:
                    details.append(f"quick_check skipped ({size // 1048576} MiB file)")
                if not (os.access(path, os.W_OK) and os.access(path.parent, os.W_OK)):
                    found.append(Finding.problem(name, DbinitError(errors.E051, path=str(path))))
                else:
                    details.append("file writable")
        elif conn.vendor == "postgresql":
            cursor.execute(
                "SELECT pg_encoding_to_char(d.encoding), r.rolcreatedb, r.rolsuper FROM pg_database d, pg_roles r "
                "WHERE d.datname = current_database() AND r.rolname = current_user"
            )
            encoding, createdb, superuser = cursor.fetchone()
            details.append(f"encoding {encoding}")
            details.append("role may create databases" if (createdb or superuser) else "role may not create databases")
            if encoding.upper() not in ("UTF8", "UTF-8"):
                found.append(Finding.problem(name, DbinitError(errors.W050, encoding=encoding)))
    found.insert(0, Finding.result(name, errors.I002, status="info", vendor=conn.vendor, details=", ".join(details)))
    return found


def check_migrations(ctx: HealthContext) -> list[Finding]:
    name = "migrations"
    if ctx.verified:
        return [Finding.result(name, errors.I016, fingerprint=ctx.verified.short)]
    from django.db.migrations.exceptions import InconsistentMigrationHistory

    from .migrations_state import duplicate_records, label, records_missing_on_disk

    loader = ctx.executor.loader
    found = []
    duplicates = duplicate_records(ctx.connection)
    if duplicates:
        described = [f"{key} ({copies} records)" for key, copies in duplicates.items()]
        found.append(Finding.problem(name, DbinitError(errors.E061, count=len(duplicates), migrations=_short(described)),
                                     records=sorted(duplicates)))
    try:
        loader.check_consistent_history(ctx.connection)
    except InconsistentMigrationHistory as exc:
        found.append(Finding.problem(name, DbinitError(errors.E021, reason=str(exc).rstrip("."))))
    missing_on_disk = [label(k) for k in records_missing_on_disk(loader)]
    if missing_on_disk:
        found.append(Finding.problem(name, DbinitError(errors.W021, migrations=", ".join(missing_on_disk)),
                                     records=missing_on_disk))
    pending = [f"{m.app_label}.{m.name}" for m in ctx.pending]
    verdicts = ctx.verification
    lost = verdicts.recordable
    if lost:
        found.append(Finding.problem(name, DbinitError(errors.W024, count=len(lost), migrations=_short(lost)),
                                     records=lost))
    if verdicts.unverifiable:
        found.append(Finding.problem(name, DbinitError(errors.W029, migrations=", ".join(verdicts.unverifiable),
                                                       command=verdicts.record_command),
                                     records=verdicts.unverifiable))
    for verdict in verdicts.partial:
        detail = "missing " + ", ".join(verdict.missing) if verdict.missing else ""
        if verdict.unexpected:
            detail += ("; " if detail else "") + "there too early " + ", ".join(verdict.unexpected)
        migrations = ", ".join(f"{verdict.app}.{n}" for n in (verdict.lost or verdict.pending))
        found.append(Finding.problem(name, DbinitError(errors.E032, migrations=migrations, detail=detail),
                                     app=verdict.app))
    still_pending = verdicts.still_pending(pending)
    if still_pending:
        found.append(Finding.problem(name, DbinitError(errors.W020, count=len(still_pending),
                                                       migrations=_short(still_pending)),
                                     pending=still_pending))
    if not found:
        found.append(Finding.result(name, errors.I003, count=len(loader.applied_migrations)))
    return found


def _short(items, limit=6) -> str:
    return ", ".join(items[:limit]) + (f" and {len(items) - limit} more" if len(items) > limit else "")


def check_model_changes(ctx: HealthContext) -> list[Finding]:
    """What ``makemigrations --check`` would catch: models changed without a migration."""
    from django.apps import apps
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.state import ProjectState

    name = "model_changes"
    loader = ctx.executor.loader
    changes = MigrationAutodetector(loader.project_state(), ProjectState.from_apps(apps)).changes(graph=loader.graph)
    if changes:
        described = [f"{app}: " + ", ".join(op.describe() for m in ms for op in m.operations)
                     for app, ms in sorted(changes.items())]
        return [Finding.problem(name, DbinitError(errors.W022, changes="; ".join(described)))]
    return [Finding.result(name, errors.I009)]


def check_checksums(ctx: HealthContext) -> list[Finding]:
    from .migrations_state import file_checksum, migration_file
    from .models import MigrationChecksum

    name = "checksums"
    if not routing.hosts_dbinit(ctx.alias):
        return [_routed_elsewhere(ctx, name, "Migration checksums", MigrationChecksum)]
    if not ctx.has_table(MigrationChecksum):
        return [Finding.result(name, errors.I026, status="info")]
    changed = []
    rows = list(MigrationChecksum.objects.using(ctx.alias).values_list("app", "name", "checksum"))
    for app, mig, digest in rows:
        path = migration_file(app, mig, ctx.executor.loader)
        if path is None:
            continue  # reported by the migrations check (W021)
        if file_checksum(path) != digest:
            changed.append(f"{app}.{mig}")
    if changed:
        changed.sort()
        return [Finding.problem(name, DbinitError(errors.W023, migrations=", ".join(changed)), migrations=changed)]
    return [Finding.result(name, errors.I008, count=len(rows))]


# Drift kinds: the catalogue entry for each, and the context key a repair reads.
DRIFT_FINDINGS = {
    "table": (errors.E030, "tables"),
    "column": (errors.E031, "columns"),
    "null": (errors.W025, "columns"),
    "index": (errors.W026, "indexes"),
    "unique": (errors.W027, "constraints"),
    "check": (errors.W027, "constraints"),
    "foreign_key": (errors.W028, "foreign_keys"),
}


def check_schema(ctx: HealthContext) -> list[Finding]:
    """The database against the state of the applied migrations (every app, pending or not)."""
    from .drift import STRUCTURAL, Expectation, compare, describe, installed_models, raw_sql_models

    name = "schema"
    if ctx.verified:
        # The migration set is the one last verified (its fingerprint matches), so the installed
        # models are the applied state and no migration graph is loaded (start-up, readiness).
        # Only tables and columns are judged on this path; dbhealth compares every index and
        # constraint against the state the graph builds.
        raw, kinds = frozenset(), STRUCTURAL
        models = installed_models(ctx.connection)
    else:
        state, _ = ctx.applied_state
        loader = ctx.executor.loader
        raw, kinds = raw_sql_models(loader, loader.graph.nodes), tuple(DRIFT_FINDINGS)
        models = list(Expectation(ctx.connection, raw).models(state.apps))
    app_of = {m._meta.db_table: m._meta.app_label for m in models}
    report = compare(ctx.connection, models, ctx.catalogue, raw, kinds)
    grouped: dict[str, list] = {}
    for kind, (code, _) in DRIFT_FINDINGS.items():
        grouped.setdefault(code, []).extend(report.missing[kind] if kind in kinds else [])
    found = []
    for code, facts in grouped.items():
        if facts:
            key = next(k for c, k in DRIFT_FINDINGS.values() if c == code)
            names = [describe(f) for f in facts]
            found.append(Finding.problem(name, DbinitError(code, **{key: ", ".join(names)}),
                                         **{key: names, "facts": facts,
                                            "apps": sorted({app_of.get(f[1], "") for f in facts})}))
    if not found:
        found.append(Finding.result(name, errors.I004, count=report.tables_expected))
    if report.unjudged:
        found.append(Finding.result(name, errors.I022, status="info", items="; ".join(report.unjudged)))
    return found


def check_seed(ctx: HealthContext) -> list[Finding]:
    from django.contrib.auth import get_user_model

    from accounts.models import Role
    from tenants.models import Tenant

    from .seeding import SeedState, active_admin_exists, role_groups_without_permissions

    name = "seed"
    if not routing.hosts_seed(ctx.alias):
        return [_routed_elsewhere(ctx, name, "The seed's tables (tenants, roles, users)", routing.seed_models()[0])]
    if not all(ctx.has_table(m) for m in (Tenant, Role, get_user_model())):
        return [Finding.result(name, errors.I027, status="info")]
    state = SeedState.read(ctx.alias)
    # Reference rows that a pending data migration of their app will create are pending, not
    # missing (as tables in check_schema): the migrations check reports them (W020).
    found = [Finding.problem(name, error, roles=state.roles_missing)
             for error in state.problems(pending_apps=ctx.pending_apps)]
    emptied = role_groups_without_permissions(ctx.alias) if ctx.catalogue.has_table("auth_group_permissions") else []
    if emptied:
        found.append(Finding.problem(name, DbinitError(errors.W043, groups=", ".join(emptied)), groups=emptied))
    candidates = None
    if settings.AISECRETARY_ENV == "production":
        from . import passwords

        candidates = passwords.accounts(ctx.alias)
    if not active_admin_exists(ctx.alias, settings.DBINIT_ADMIN_EMAIL, accounts=candidates):
        found.append(Finding.problem(name, DbinitError(errors.W040)))
    if candidates is not None:
        # Any active admin, whatever DBINIT_ADMIN_EMAIL says; the probe only reads verdicts.
        emails = passwords.well_known_accounts(ctx.alias, may_hash=ctx.hash_passwords, candidates=candidates)
        if emails:
            found.append(Finding.problem(name, passwords.well_known_error(emails), accounts=emails))
    return found or [Finding.result(name, errors.I005)]


def _routed_elsewhere(ctx, check, what, model) -> Finding:
    where = ", ".join(a for a in routing.aliases() if routing.hosts_model(a, model)) or "no database"
    return Finding.result(check, errors.I019, what=what, where=where, alias=ctx.alias)


def check_history(ctx: HealthContext) -> list[Finding]:
    from .history import last_run

    name = "history"
    if not routing.hosts_dbinit(ctx.alias):
        from .models import InitializationRun

        return [_routed_elsewhere(ctx, name, "initdb's run history", InitializationRun)]
    last = last_run(ctx.alias)
    if last is None:
        return [Finding.problem(name, DbinitError(errors.W062))]
    when = last.started_at.strftime("%Y-%m-%d %H:%M:%S UTC")
    if last.outcome == "failed":
        return [Finding.problem(name, DbinitError(errors.W061, when=when, host=last.host,
                                                  outcome=f"failed ({last.error_code})"))]
    total = sum(s.get("duration_ms", 0) for s in last.steps)
    return [Finding.result(name, errors.I007, trigger=last.trigger, when=when, host=last.host,
                           outcome=last.outcome, ms=f"{total:.0f}")]


def check_environment(ctx: HealthContext) -> list[Finding]:
    from . import environment

    name = "environment"
    other = environment.mismatch(ctx.alias)
    if other:
        return [Finding.problem(name, other)]
    found = environment.recorded(ctx.alias)
    if found is None:
        return [Finding.result(name, errors.I012, status="info")]
    return [Finding.result(name, errors.I011, environment=found)]


def check_lock(ctx: HealthContext) -> list[Finding]:
    from .locking import current_holder

    name = "lock"
    holder = current_holder(ctx.connection)
    if holder is None:
        return [Finding.result(name, errors.I010)]
    if holder.expired:
        # Its holder died: the next initdb takes it over by itself; dbrepair may also delete it.
        error = DbinitError(errors.W060, holder=holder.describe(), idle=f"{-holder.expires_in:.0f}")
        return [Finding.problem(name, error, holder=holder.as_dict())]
    finding = Finding.result(name, errors.I028, status="info", holder=holder.describe())
    finding.context["holder"] = holder.as_dict()
    return [finding]


def check_snapshot(ctx: HealthContext) -> list[Finding]:
    """The committed snapshot (manage.py dbsnapshot) still matches the migration files."""
    from . import snapshots
    from .fingerprint import current

    name = "snapshot"
    if ctx.alias != DEFAULT_DB_ALIAS:  # the committed snapshot is what migrate makes of the default database
        return []
    fp = current(ctx.connection)
    problem = snapshots.stale(ctx.connection, fp=fp)
    if problem:
        return [Finding.problem(name, problem)]
    return [Finding.result(name, errors.I018, path=str(snapshots.snapshot_path(ctx.connection.vendor)),
                           state=snapshots.state(ctx.connection, fp))]


# name -> (function, needs the database)
CHECKS = {
    "configuration": (check_configuration, False),
    "connectivity": (check_connectivity, True),
    "replication": (check_replication, True),
    "engine": (check_engine, True),
    "migrations": (check_migrations, True),
    "model_changes": (check_model_changes, True),
    "checksums": (check_checksums, True),
    "snapshot": (check_snapshot, True),
    "schema": (check_schema, True),
    "seed": (check_seed, True),
    "history": (check_history, True),
    "environment": (check_environment, True),
    "lock": (check_lock, True),
}
CONFIGURATION_CHECKS = [n for n, (_, needs_db) in CHECKS.items() if not needs_db]


def run(alias="default", *, only=None, include_config=True, connect_timeout=0.0,
        hash_passwords=False, trust_fingerprint=False, read_only_answer=None) -> HealthReport:
    """Run the checks (``only`` names a subset) against ``alias`` and collect a report.

    ``hash_passwords``: whether the seed check may hash the well-known password against an
    admin's hash not checked before (commands, start-up); the probe leaves it off.
    ``trust_fingerprint``: when the migration set is as last verified (:mod:`dbinit.fingerprint`),
    the migrations check says so without loading the graph (start-up and readiness probes).
    ``read_only_answer``: :func:`routing.read_only_answer`'s ``(reason, asked)`` when the caller
    just asked; when the server answered, the connectivity check does not ask it again.
    """
    start = time.perf_counter()
    ctx = HealthContext(alias, connect_timeout=connect_timeout, hash_passwords=hash_passwords,
                        trust_fingerprint=trust_fingerprint, read_only_answer=read_only_answer)
    settings_dict = connections.settings[alias] if alias in connections.settings else {}
    report = HealthReport(database=describe_database(settings_dict, alias).as_dict())
    names = list(only or CHECKS)
    if not include_config:
        names = [n for n in names if n not in CONFIGURATION_CHECKS]
    if any(CHECKS[n][1] for n in names) and "connectivity" not in names:
        names.insert(0, "connectivity")
    config_failed = False
    for name in names:
        function, needs_db = CHECKS[name]
        if needs_db and name != "connectivity" and not ctx.reachable:
            continue  # connectivity already reported why
        if name == "connectivity" and config_failed:
            continue
        t0 = time.perf_counter()
        try:
            findings = function(ctx)
        except DbinitError as exc:
            findings = [Finding.problem(name, exc)]
        except DatabaseError as exc:
            error, _ = db.classify(exc, alias, f"health check {name}")
            findings = [Finding.problem(name, error)]
        elapsed = (time.perf_counter() - t0) * 1000
        for f in findings:
            f.check = name
            f.duration_ms = elapsed / len(findings)
        if name == "configuration" and any(f.level_number >= 40 and f.id == errors.E008.id for f in findings):
            config_failed = True
        report.findings += findings
    if "pending" in ctx.__dict__:
        report.pending_apps = set(ctx.pending_apps)
    if ctx.read_only:
        _point_hints_at_primary(ctx, report)
    report.duration_ms = (time.perf_counter() - start) * 1000
    return report


# Problems of the read-only alias itself, whose own hint says what to do there.
OWN_HINTS = {errors.E075.id, errors.W074.id}


def _point_hints_at_primary(ctx, report):
    """On a read-only alias no fix runs here: every hint says to fix the primary instead."""
    for f in report.findings:
        if f.level_number >= 30 and f.id not in OWN_HINTS:
            f.hint = routing.refusal(ctx.alias, "python manage.py dbrepair", ctx.read_only).hint
            f.repair = None
