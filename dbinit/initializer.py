"""Orchestration: take a database in any state to migrated, seeded and verified.

``initialize()`` runs the steps in order (configuration, database, connect,
lock, migrate, seed, verify), times each one, stops at the first failure and
returns an :class:`InitializationResult`; it never prints. Commands and the
start-up hook render the result.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from contextlib import ExitStack
from datetime import UTC, datetime

from django.conf import settings
from django.db import DatabaseError, connections
from django.db import Error as DriverError  # DatabaseError and InterfaceError ("connection already closed")
from django.db.migrations.executor import MigrationExecutor
from django.db.utils import ConnectionDoesNotExist

from . import database as db
from . import migrations_state, schema, seeding
from .configuration import SUPPORTED_ENGINES, WELL_KNOWN_PASSWORD, describe_database
from .errors import DbinitError
from .locking import initialization_lock
from .results import FAILED, OK, PLANNED, SKIPPED, WARNING, InitializationResult, StepResult

logger = logging.getLogger("dbinit")

HISTORY_KEPT = 500
STEPS = ("configuration", "database", "connect", "lock", "migrate", "seed", "verify")


class _Unchanged:
    pass


UNSET = _Unchanged()


def initialize(database="default", *, seed=True, plan_only=False, on_event=None, trigger="initdb",
               admin_email=None, admin_password=UNSET, generate_password=True) -> InitializationResult:
    """Initialise ``database``; see :class:`Initializer`."""
    return Initializer(
        database, seed=seed, plan_only=plan_only, on_event=on_event, trigger=trigger,
        admin_email=admin_email, admin_password=admin_password, generate_password=generate_password,
    ).run()


class Initializer:
    def __init__(self, database="default", *, seed=True, plan_only=False, on_event=None, trigger="initdb",
                 admin_email=None, admin_password=UNSET, generate_password=True):
        self.alias = database
        self.seed = seed
        self.plan_only = plan_only
        self.on_event = on_event or (lambda *args: None)
        self.trigger = trigger
        self.admin_email = admin_email or settings.DBINIT_ADMIN_EMAIL
        self.admin_password = settings.DBINIT_ADMIN_PASSWORD if admin_password is UNSET else admin_password
        self.generate_password = generate_password
        self.environment = settings.AISECRETARY_ENV
        self.database_missing = False  # a missing PostgreSQL database / SQLite file (plan mode)
        self.database_created = False  # this run created the PostgreSQL database
        self.connection_info = None  # from the database step, when it had to connect
        self.connected = False
        self.executor = None
        self.plan = None
        self.seed_state = None
        self.last_run_complete = None
        self.lock_info = None  # while held: tells waiters and dbhealth which step the holder is in

    # --- the run ----------------------------------------------------------------------
    def run(self) -> InitializationResult:
        started = datetime.now(UTC)
        t0 = time.perf_counter()
        try:
            settings_dict = connections[self.alias].settings_dict
        except ConnectionDoesNotExist:
            settings_dict = {}
        self.result = InitializationResult(
            database=describe_database(settings_dict, self.alias),
            environment=self.environment,
            plan_only=self.plan_only,
        )
        with ExitStack() as self.stack:
            if settings_dict:
                self.stack.enter_context(db.application_name(self.alias, self.trigger))
            for name in STEPS:
                step = self._run_step(name)
                if step.error:
                    break
            self.result.duration_ms = (time.perf_counter() - t0) * 1000
            error = self.result.error
            # Recorded while still holding the lock: a process that waited for it then sees a
            # finished run and has nothing left to do.
            if not self.plan_only and self.connected and not (error and error.code in ("dbinit.E014", "dbinit.E010", "dbinit.E066")):
                self._record_history(started)
        summary = f"failed at {error.step} ({error.code})" if error else "ok"
        logger.info("%s on %s: %s in %.0f ms", self.trigger, self.result.database.target(), summary,
                    self.result.duration_ms)
        return self.result

    def _run_step(self, name) -> StepResult:
        step = StepResult(name=name)
        self.result.steps.append(step)
        self.on_event("step_start", step)
        if self.lock_info is not None:
            self.lock_info.set_step(f"{self.trigger}:{name}")
        start = time.perf_counter()
        try:
            getattr(self, f"step_{name}")(step)
        except DbinitError as exc:
            exc.step = exc.step or name
            step.error, step.status = exc, FAILED
        except DriverError as exc:
            step.error, _ = db.classify(exc, self.alias, name)
            step.status = FAILED
        step.duration_ms = (time.perf_counter() - start) * 1000
        if step.status == OK and step.warnings:
            step.status = WARNING
        if step.error:
            logger.error("Step %s failed: %s", name, step.error)
        else:
            logger.info("Step %s %s in %.0f ms%s", name, step.status, step.duration_ms,
                        f": {step.summary}" if step.summary else "")
        self.on_event("step_end", step)
        return step

    @property
    def connection(self):
        return connections[self.alias]

    # --- steps --------------------------------------------------------------------------
    def step_configuration(self, step):
        if self.alias not in settings.DATABASES:
            raise DbinitError("E008", alias=self.alias, aliases=", ".join(settings.DATABASES))
        desc = self.result.database
        if desc.engine not in SUPPORTED_ENGINES:
            raise DbinitError("E003", engine=desc.engine)
        if self.environment == "production":
            if settings.DEBUG:
                raise DbinitError("E007")
            if self.seed and self.admin_password == WELL_KNOWN_PASSWORD:
                raise DbinitError("E006")
        where = desc.name if desc.vendor == "sqlite" else (
            f"{desc.user}{':' + desc.password if desc.password else ''}@{desc.target()}"
        )
        step.summary = f"{self.environment} · {desc.vendor} · {where}"
        step.detail = {"environment": self.environment, **desc.as_dict()}

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
            self.database_missing = True
            if self.plan_only:
                step.status, step.summary = PLANNED, f"would create {path}"
                return
            folder_created = db.ensure_sqlite_folder(path)
            step.created = 1
            step.summary = f"will create {path}" + (" (folder created)" if folder_created else "")
            return
        try:
            # Connecting is how PostgreSQL says whether the database exists; keep the result.
            self.connection_info = db.connect(self.alias, step="database")
            step.skipped, step.summary = 1, f"database {self.result.database.name!r} exists"
        except DbinitError as exc:
            if not db.is_missing_database(exc):
                raise
            self.database_missing = True
            if self.plan_only:
                step.status, step.summary = PLANNED, f"would create database {self.result.database.name!r}"
                return
            created = db.create_postgres_database(self.alias)
            self.database_created = created
            step.created = int(created)
            step.summary = (f"created database {self.result.database.name!r}" if created
                            else f"database {self.result.database.name!r} created by another process")

    def step_connect(self, step):
        if self.plan_only and self.database_missing:
            step.status, step.summary = SKIPPED, "database does not exist yet"
            return
        try:
            info = self.connection_info or db.connect(self.alias)
        except DbinitError as exc:
            if self.database_created and exc.code == "dbinit.E010":
                # The login that found the database missing makes a pooler wait before the next one.
                raise DbinitError("E067", name=self.result.database.name, target=exc.context["target"],
                                  timeout=exc.context["timeout"], reason=exc.context["reason"]) from None
            raise
        self.connected = True
        db.check_server_version(self.connection)
        step.summary = f"{info.vendor} {info.version}, {info.round_trip_ms:.1f} ms round trip"
        step.detail = {"vendor": info.vendor, "version": info.version, "attempts": info.attempts,
                       "round_trip_ms": round(info.round_trip_ms, 2)}

    def step_lock(self, step):
        if self.plan_only:
            step.status, step.summary = SKIPPED, "plan only"
            return
        self.executor = MigrationExecutor(self.connection)
        migrations_state.check_history(self.executor)
        self.plan = migrations_state.forward_plan(self.executor)
        if not self.plan and not self._seed_needed() and self._last_run_complete():
            # Double-checked locking: an initialised database costs no lock, so many workers
            # starting at once do not queue behind each other for nothing.
            step.status, step.summary = SKIPPED, "nothing to do"
            return
        info = self.stack.enter_context(initialization_lock(self.connection, settings.DBINIT_LOCK_TIMEOUT,
                                                            purpose=self.trigger))
        self.lock_info = info
        step.summary = f"{info.kind}" + (f", waited {info.waited_ms:.0f} ms" if info.contended else "")
        step.detail = {"kind": info.kind, "waited_ms": round(info.waited_ms, 1), "contended": info.contended}
        # Another process may have done the work while we waited: read the state again.
        self.executor.loader.build_graph()
        migrations_state.check_history(self.executor)
        self.plan = migrations_state.forward_plan(self.executor)
        self.seed_state = None
        self.last_run_complete = None

    def step_migrate(self, step):
        if self.plan_only:
            if self.database_missing:
                pending = migrations_state.offline_plan()
            else:
                executor = MigrationExecutor(self.connection)
                migrations_state.check_history(executor)
                pending = [migrations_state.label((m.app_label, m.name))
                           for m in migrations_state.pending_migrations(executor)]
            step.status = PLANNED
            step.detail = {"pending": pending}
            step.summary = f"would apply {len(pending)} migration(s)"
            return
        applied_before = len(self.executor.loader.applied_migrations)
        if not self.plan:
            step.skipped, step.summary = applied_before, f"no migrations to apply ({applied_before} applied)"
            if not self._last_run_complete():
                # An earlier run may have died between its last migration and the end of
                # post_migrate (content types, permissions): finish that, as migrate would.
                migrations_state.apply(self.executor, [], on_event=self.on_event)
                step.summary += "; post-migrate handlers run"
            return
        report = migrations_state.apply(self.executor, self.plan, on_event=self.on_event)
        step.created, step.skipped = len(report.applied), applied_before
        step.detail = {"applied": report.applied, "durations_ms": report.durations_ms}
        step.summary = f"applied {len(report.applied)} migration(s)"
        self.seed_state = None

    def step_seed(self, step):
        if not self.seed:
            step.status, step.summary = SKIPPED, "--no-seed"
            return
        if self.plan_only:
            step.status = PLANNED
            if self.database_missing:
                step.summary = f"would create the admin {self.admin_email}"
            else:
                try:
                    state = self._seed_state()
                except DatabaseError:  # tables not migrated yet: everything would be seeded
                    state = {"tenant": True, "roles": True, "admin": True}
                todo = [k for k, missing in state.items() if missing]
                step.summary = f"would seed: {', '.join(todo)}" if todo else "nothing to seed"
            return
        if not self._seed_needed():
            state_items = ["tenant:system", "roles", f"admin:{self.admin_email}"]
            step.skipped, step.summary = len(state_items), "nothing to seed (all present)"
            step.detail = {"created": [], "skipped": state_items}
            return
        report = seeding.seed(
            self.alias, admin_email=self.admin_email, admin_password=self.admin_password,
            environment=self.environment, generate_password=self.generate_password,
        )
        step.created, step.skipped = len(report.created), len(report.skipped)
        step.warnings = report.warnings
        step.detail = {"created": report.created, "skipped": report.skipped}
        step.summary = ("created " + ", ".join(report.created)) if report.created else "nothing to seed"
        if report.generated_password:
            self.result.generated_password = report.generated_password
        self.seed_state = None

    def step_verify(self, step):
        if self.plan_only:
            step.status, step.summary = SKIPPED, "plan only"
            return
        report = schema.verify(self.connection)
        if report.missing_tables:
            raise DbinitError("E030", tables=", ".join(report.missing_tables))
        if report.missing_columns:
            raise DbinitError("E031", columns=", ".join(report.missing_columns))
        state = self._seed_state()
        if state["tenant"]:
            raise DbinitError("E040")
        if state["roles"]:
            raise DbinitError("E041", roles=", ".join(state["roles"]))
        if state["admin"]:
            if self.seed:
                raise DbinitError("E042", what=f"the admin user {self.admin_email}",
                                  reason="it is missing after the seed step")
            step.warnings.append(DbinitError("W040"))
        step.summary = f"{report.tables_expected} tables and their columns present; seed rows present"
        step.detail = {"tables": report.tables_expected}

    # --- helpers ------------------------------------------------------------------------
    def _seed_state(self) -> dict:
        """What seed data is missing (cached until a step changes it)."""
        if self.seed_state is None:
            self.seed_state = seeding.missing_seed(self.alias, self.admin_email)
        return self.seed_state

    def _last_run_complete(self) -> bool:
        """Whether the last recorded initialisation of this database finished."""
        if self.last_run_complete is None:
            from .models import InitializationRun

            try:
                outcome = (InitializationRun.objects.using(self.alias).order_by("-id")
                           .values_list("outcome", flat=True).first())
            except DatabaseError:  # no history table yet
                outcome = None
            self.last_run_complete = outcome in (OK, WARNING)
        return self.last_run_complete

    def _seed_needed(self) -> bool:
        state = self._seed_state()
        return bool(state["tenant"] or state["roles"] or (self.seed and state["admin"]))

    def _record_history(self, started):
        from .models import InitializationRun

        error = self.result.error
        try:
            run = InitializationRun.objects.using(self.alias).create(
                started_at=started,
                finished_at=datetime.now(UTC),
                host=socket.gethostname()[:255],
                pid=os.getpid(),
                trigger=self.trigger,
                outcome=FAILED if error else self.result.status,
                error_code=error.code if error else "",
                steps=[{"name": s.name, "status": s.status, "duration_ms": round(s.duration_ms, 1),
                        **({"error": s.error.code} if s.error else {})} for s in self.result.steps],
            )
            # Every worker start adds a run: keep the newest HISTORY_KEPT (a primary-key range delete).
            InitializationRun.objects.using(self.alias).filter(id__lte=run.id - HISTORY_KEPT).delete()
        except DriverError as exc:  # e.g. the dbinit table is not there yet; never fail the run for it
            logger.debug("Initialisation run not recorded: %s", exc)
