"""Orchestration: take a database in any state to migrated, seeded and verified.

``initialize()`` runs the steps in order (configuration, database, connect,
lock, migrate, seed, verify), times each one, stops at the first failure and
returns an :class:`InitializationResult`; it never prints. Commands and the
start-up hook render the result. What a run *would* do (``initdb --plan``) is
:mod:`dbinit.planning`'s job; every step here runs in one mode.
"""

from __future__ import annotations

import logging
import time
from contextlib import ExitStack
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from django.conf import settings
from django.db import Error as DriverError  # DatabaseError and InterfaceError ("connection already closed")
from django.db import connections
from django.db.utils import ConnectionDoesNotExist

# What a no-op run (the migration set as last verified) needs; the migration machinery, templates,
# backups and password rules are imported by the steps that use them.
from . import database as db
from . import environment, errors, fingerprint, history, routing, seeding
from . import sqlite as sqlite_settings
from .configuration import describe_database, validate_configuration
from .errors import DbinitError
from .results import FAILED, OK, SKIPPED, WARNING, InitializationResult, StepResult, TemplateUse

if TYPE_CHECKING:
    from . import templates

logger = logging.getLogger("dbinit")

STEPS = ("configuration", "database", "connect", "lock", "migrate", "seed", "verify")


class _Unchanged:
    pass


UNSET = _Unchanged()

# What the database step found (Initializer.database_found).
EXISTED, MISSING, CREATED = "existed", "missing", "created"


def initialize(database="default", *, seed=True, on_event=None, trigger="initdb",
               admin_email=None, admin_password=UNSET, generate_password=True) -> InitializationResult:
    """Initialise ``database``; see :class:`Initializer`."""
    return Initializer(
        database, seed=seed, on_event=on_event, trigger=trigger,
        admin_email=admin_email, admin_password=admin_password, generate_password=generate_password,
    ).run()


def new_result(alias, plan_only=False) -> InitializationResult:
    """An empty result describing ``alias`` (masked), also for an alias that does not exist."""
    try:
        settings_dict = connections[alias].settings_dict
    except ConnectionDoesNotExist:
        settings_dict = {}
    return InitializationResult(database=describe_database(settings_dict, alias),
                                environment=settings.AISECRETARY_ENV, plan_only=plan_only)


def run_step(result, name, function, *, alias, on_event) -> StepResult:
    """Run one step: time it, turn a catalogued or database error into the step's error, log it."""
    step = StepResult(name=name)
    result.steps.append(step)
    on_event("step_start", step)
    start = time.perf_counter()
    try:
        function(step)
    except DbinitError as exc:
        exc.step = exc.step or name
        step.error, step.status = exc, FAILED
    except DriverError as exc:
        step.error, _ = db.classify(exc, alias, name)
        step.status = FAILED
    step.duration_ms = (time.perf_counter() - start) * 1000
    if step.status == OK and step.warnings:
        step.status = WARNING
    if step.error:
        logger.error("Step %s failed: %s", name, step.error)
    else:
        logger.info("Step %s %s in %.0f ms%s", name, step.status, step.duration_ms,
                    f": {step.summary}" if step.summary else "")
    on_event("step_end", step)
    return step


def describe_configuration(step, result):
    """The configuration step's summary: environment, engine and where (password masked)."""
    desc = result.database
    where = desc.name if desc.vendor == "sqlite" else (
        f"{desc.user}{':' + desc.password if desc.password else ''}@{desc.target()}"
    )
    step.summary = f"{result.environment} · {desc.vendor} · {where}"
    step.detail = {"environment": result.environment, **desc.as_dict()}


class Initializer:
    def __init__(self, database="default", *, seed=True, on_event=None, trigger="initdb",
                 admin_email=None, admin_password=UNSET, generate_password=True):
        self.alias = database
        self.seed = seed
        self.on_event = on_event or (lambda *args: None)
        self.trigger = trigger
        self.admin_email = admin_email or settings.DBINIT_ADMIN_EMAIL
        self.admin_password = settings.DBINIT_ADMIN_PASSWORD if admin_password is UNSET else admin_password
        self.generate_password = generate_password
        self.environment = settings.AISECRETARY_ENV
        self.connection_info = None  # from the database step, when it had to connect
        # What the database step found: it EXISTED; it was missing and this run's CREATE DATABASE
        # CREATED it (PostgreSQL); or it was MISSING and came otherwise (SQLite's new file, another
        # process's CREATE DATABASE). One field, so "missing" and "created" cannot disagree.
        self.database_found = EXISTED
        self.lock_info = None  # while held: tells waiters and dbhealth which step the holder is in
        self.connected = False
        self.executor = None
        self.plan = None
        self.seed_state = None
        self.last_run_complete = None
        self.fingerprint = None  # set when the migration set is as last verified (graph not loaded)
        self.template = TemplateUse()  # a missing database made from a verified template

    # --- the run ----------------------------------------------------------------------
    def run(self) -> InitializationResult:
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        self.result = new_result(self.alias)
        steps = (("configuration", self.step_configuration), ("database", self.step_database),
                 ("connect", self.step_connect), ("lock", self.step_lock), ("migrate", self.step_migrate),
                 ("seed", self.step_seed), ("verify", self.step_verify))
        with ExitStack() as self.stack:
            if self.alias in connections.settings:  # an unknown alias is the configuration step's E008
                self.stack.enter_context(db.application_name(self.alias, self.trigger))
            for name, function in steps:
                if self.lock_info is not None:
                    self.lock_info.set_step(f"{self.trigger}:{name}")
                step = run_step(self.result, name, function, alias=self.alias, on_event=self.on_event)
                if step.error:
                    break
            self.result.duration_ms = (time.perf_counter() - t0) * 1000
            error = self.result.error
            # Recorded while still holding the lock: a process that waited for it then sees a
            # finished run and has nothing left to do.
            if self.connected and not (error and error.code in (errors.E014.id, errors.E010.id, errors.E066.id)):
                if not error and not self.fingerprint:
                    fingerprint.remember(self.connection)
                history.record_run(self.alias, self.result, started, self.trigger)
        summary = f"failed at {error.step} ({error.code})" if error else "ok"
        logger.info("%s on %s: %s in %.0f ms", self.trigger, self.result.database.target(), summary,
                    self.result.duration_ms)
        return self.result

    @property
    def connection(self):
        return connections[self.alias]

    @property
    def database_missing(self) -> bool:
        """This run found no database (so it has work to do)."""
        return self.database_found != EXISTED

    @property
    def database_created(self) -> bool:
        """This run created the PostgreSQL database."""
        return self.database_found == CREATED

    # --- steps --------------------------------------------------------------------------
    def step_configuration(self, step):
        problems = validate_configuration(self.alias, admin_password=self.admin_password, seed=self.seed)
        if problems:
            raise problems[0]
        # A replica (TEST MIRROR, or no model routed to it) is never created, migrated or seeded.
        routing.refuse_read_only(self.alias, self.command, ask_server=False)
        if self.environment == "production" and self.seed and self.admin_password:
            from . import passwords

            # AUTH_PASSWORD_VALIDATORS read files: judged here, not in the (probe-cheap) configuration rules.
            passwords.refuse_weak(self.admin_password, self.admin_email)
        describe_configuration(step, self.result)

    def step_database(self, step):
        if self.connection.vendor == "sqlite":
            path = db.sqlite_path(self.connection.settings_dict)
            if path is None:
                step.status, step.summary = SKIPPED, "in-memory database"
                return
            exists = db.check_sqlite_file(path)
            if exists:
                step.skipped, step.summary = 1, f"{path} exists"
                return
            self.database_found = MISSING
            from . import templates

            folder_created = db.ensure_sqlite_folder(path)
            # A -wal left without its file would be replayed into the new database: set it aside
            # (before a template's copy appears under the name).
            from . import backup

            stale = backup.move_stale_side_files(self.connection, "stale")
            self.template = templates.restore_sqlite(self.connection, path, seed=self._template_seed())
            step.created = 1
            step.summary = (f"created {path}" if self.template.used else f"will create {path}") + (
                " (folder created)" if folder_created else "")
            if stale:
                step.summary += f"; stale -wal/-shm moved to {stale.parent}"
            if self.template.summary():
                step.summary += " " + self.template.summary()
            step.detail = self.template.as_dict()
            return
        try:
            # Connecting is how PostgreSQL says whether the database exists; keep the result.
            self.connection_info = db.connect(self.alias, step="database")
            step.skipped, step.summary = 1, f"database {self.result.database.name!r} exists"
        except DbinitError as exc:
            if not db.is_missing_database(exc):
                raise
            from . import templates

            created, self.template = templates.create_postgres_database(self.alias, seed=self._template_seed())
            self.database_found = CREATED if created else MISSING
            step.created = int(created)
            step.summary = (f"created database {self.result.database.name!r}" if created
                            else f"database {self.result.database.name!r} created by another process")
            if self.template.summary():
                step.summary += " " + self.template.summary()
            step.detail = self.template.as_dict()

    def step_connect(self, step):
        try:
            info = self.connection_info or db.connect(self.alias)
        except DbinitError as exc:
            if self.database_created and exc.code == errors.E010.id:
                # The login that found the database missing makes a pooler wait before the next one.
                raise DbinitError(errors.E067, name=self.result.database.name, target=exc.context["target"],
                                  timeout=exc.context["timeout"], reason=exc.context["reason"]) from None
            raise
        self.connected = True
        db.check_server_version(self.connection)
        step.summary = f"{info.vendor} {info.version}, {info.round_trip_ms:.1f} ms round trip"
        step.detail = {"vendor": info.vendor, "version": info.version, "attempts": info.attempts,
                       "round_trip_ms": round(info.round_trip_ms, 2)}
        self._check_writable_server(step)

    def step_lock(self, step):
        if self._done_as_last_verified():
            step.status, step.summary = SKIPPED, "nothing to do (migration set as last verified)"
            return
        from . import migrations_state
        from .locking import held_by_another_process, initialization_lock

        # Double-checked locking: an initialised database costs no lock, so many workers starting at
        # once do not queue behind each other for nothing. No plan (and no migration graph) first when
        # there is work anyway: a database this run found missing, or a lock another process holds,
        # whose holder's work this run then waits for (the fingerprint says when it is done).
        if not self.database_missing and not held_by_another_process(self.connection):
            from django.db.migrations.executor import MigrationExecutor

            self.executor = MigrationExecutor(self.connection)
            migrations_state.check_history(self.executor)
            self.plan = migrations_state.forward_plan(self.executor)
            if not self.plan and not self._seed_state().needs_seeding(self.seed) and self._last_run_complete():
                step.status, step.summary = SKIPPED, "nothing to do"
                return
        info = self.stack.enter_context(initialization_lock(
            self.connection, settings.DBINIT_LOCK_TIMEOUT, purpose=self.trigger,
            already_done=self._done_as_last_verified))
        self.lock_info = info
        step.summary = f"{info.kind}" + (f", waited {info.waited_ms:.0f} ms" if info.contended else "")
        step.detail = {"kind": info.kind, "waited_ms": round(info.waited_ms, 1), "contended": info.contended,
                       "done_by_holder": info.done_by_holder}
        if info.done_by_holder:
            step.status = SKIPPED
            step.summary += ": another process initialised it"
            return
        # Another process may have done part of the work while we waited: read the state again.
        self.seed_state = None
        self.last_run_complete = None
        if self.template.used:
            # This run copied the database from a verified template: its stamp, checked again here
            # against the files on disk and the applied records, vouches for every migration and
            # post-migrate handler, so the migration graph is not loaded.
            self.fingerprint = fingerprint.unchanged(self.connection)
            if self.fingerprint:
                return
        self.fingerprint = None
        if self.executor is None:
            from django.db.migrations.executor import MigrationExecutor

            self.executor = MigrationExecutor(self.connection)
        else:
            self.executor.loader.build_graph()
        migrations_state.check_history(self.executor)
        self.plan = migrations_state.forward_plan(self.executor)

    def step_migrate(self, step):
        if self.fingerprint:
            verified = "as in the template" if self.template.used else "as last verified"
            step.summary = f"no migrations to apply (migration set {self.fingerprint.short} {verified})"
            step.detail = {"fingerprint": self.fingerprint.digest}
            return
        from . import migrations_state, verification

        applied_before = len(self.executor.loader.applied_migrations)
        if not self.plan:
            step.skipped, step.summary = applied_before, f"no migrations to apply ({applied_before} applied)"
            if not self._last_run_complete() and not self.template.used:
                # An earlier run may have died between its last migration and the end of
                # post_migrate (content types, permissions): finish that, as migrate would.
                migrations_state.apply(self.executor, [], on_event=self.on_event)
                step.summary += "; post-migrate handlers run"
            return
        # Never re-apply what is already there (lost records): E033 sends the person to dbrepair.
        verification.refuse_blind_apply(self.executor, [m for m, backwards in self.plan if not backwards])
        report = migrations_state.apply(self.executor, self.plan, on_event=self.on_event)
        step.created, step.skipped = len(report.applied), applied_before
        step.detail = {"applied": report.applied, "durations_ms": report.durations_ms}
        step.summary = f"applied {len(report.applied)} migration(s)"
        self.seed_state = None

    def step_seed(self, step):
        if not self.seed:
            step.status, step.summary = SKIPPED, "--no-seed"
            return
        if not self._hosts_seed():
            step.status, step.summary = SKIPPED, "the seed's tables are routed to another database"
            return
        if not self._seed_state().needs_seeding(self.seed):
            state_items = ["tenant:system", "roles", f"admin:{self.admin_email}"]
            step.skipped = len(state_items)
            step.summary = "nothing to seed (" + ("copied with the template" if self.template.seeded else "all present") + ")"
            step.detail = {"created": [], "skipped": state_items}
            return
        report = seeding.seed(
            self.alias, admin_email=self.admin_email, admin_password=self.admin_password,
            # A database that records production is seeded under production's rules from anywhere.
            environment=environment.effective(self.alias, self.environment),
            generate_password=self.generate_password,
        )
        step.created, step.skipped = len(report.created), len(report.skipped)
        step.warnings = report.warnings
        step.detail = {"created": report.created, "skipped": report.skipped}
        step.summary = ("created " + ", ".join(report.created)) if report.created else "nothing to seed"
        if report.generated_password:
            self.result.generated_password = report.generated_password
        self.seed_state = None

    def step_verify(self, step):
        from . import drift

        # The installed models are the applied state now: drift's tables and columns, nothing costlier.
        report = drift.compare(self.connection, drift.installed_models(self.connection), kinds=drift.STRUCTURAL)
        if report.missing["table"]:
            raise DbinitError(errors.E030, tables=", ".join(report.names("table")))
        if report.missing["column"]:
            raise DbinitError(errors.E031, columns=", ".join(report.names("column")))
        if not self._hosts_seed():
            step.summary = f"{report.tables_expected} tables and their columns present; seed routed elsewhere"
            step.detail = {"tables": report.tables_expected}
            return
        state = self._seed_state()
        problems = state.problems()
        if problems:
            raise problems[0]
        if state.admin_missing:
            if self.seed:
                raise DbinitError(errors.E042, what=f"the admin user {self.admin_email}",
                                  reason="it is missing after the seed step")
            step.warnings.append(DbinitError(errors.W040))
        found = environment.record(self.alias, self.environment)
        other = environment.mismatch(self.alias, self.environment, found)
        if other:
            step.warnings.append(other)
        if self.environment == "production":
            from . import passwords

            passwords.refuse_well_known(self.alias)
        step.summary = f"{report.tables_expected} tables and their columns present; seed rows present"
        step.detail = {"tables": report.tables_expected}

    # --- helpers ------------------------------------------------------------------------
    def _done_as_last_verified(self) -> bool:
        """Nothing to do, known without the migration graph: the fingerprint matches, seed and last run complete.

        Asked again after waiting for another process's lock, so it reads the state afresh.
        """
        self.seed_state = None
        self.last_run_complete = None
        self.fingerprint = fingerprint.unchanged(self.connection)
        if self.fingerprint and not self._seed_state().needs_seeding(self.seed) and self._last_run_complete():
            return True
        self.fingerprint = None
        return False

    def _template_seed(self) -> templates.Seed | None:
        """The seed a seeded template may hold for this run (None: the base template, seeded as usual)."""
        if not (self.seed and self._hosts_seed()):
            return None
        from . import templates

        return templates.seed_for(self.admin_email, self.admin_password, self.environment)

    @property
    def command(self) -> str:
        """The command a refusal names: initdb, resetdb, or startup."""
        return self.trigger.split(":")[0]

    def _hosts_seed(self) -> bool:
        return routing.hosts_seed(self.alias)

    def _check_writable_server(self, step):
        """Refuse a read-only server (standby, read-only default); set SQLite's journal mode."""
        reason = routing.server_read_only_reason(self.connection)
        if reason:
            raise routing.refusal(self.alias, self.command, reason)
        if self.connection.vendor == "sqlite":
            mode, warning = sqlite_settings.ensure_journal_mode(self.connection, settings.DBINIT_SQLITE_JOURNAL_MODE)
            if warning:
                step.warnings.append(warning)
            step.detail["journal_mode"] = mode
            step.summary += f", journal mode {mode}"

    def _seed_state(self) -> seeding.SeedState:
        """What seed data is missing (cached until a step changes it)."""
        if not self._hosts_seed():  # nothing of the seed lives here: nothing is missing
            return seeding.SeedState(tenant_missing=False, roles_missing=[])
        if self.seed_state is None:
            self.seed_state = seeding.SeedState.read(self.alias, self.admin_email)
        return self.seed_state

    def _last_run_complete(self) -> bool:
        """Whether the last recorded initialisation of this database finished."""
        if not routing.hosts_dbinit(self.alias):
            # No history here: only the migrations (each its own transaction) say what is left,
            # and post_migrate's content types and permissions are routed elsewhere too.
            return True
        if self.last_run_complete is None:
            self.last_run_complete = history.last_run_complete(self.alias)
        return self.last_run_complete
