"""``initdb --plan``: what initialisation would do, without changing anything.

Built the way ``migrate --plan`` builds its answer from ``migration_plan()``:
from the configuration, whether the database exists, the migration plan and
the seed state. Nothing is created, locked, migrated or written; a database
that does not exist yet is not connected to (its plan is every migration).
The answer has initdb's steps, so the command renders it like a real run.
"""

from __future__ import annotations

import time

from django.conf import settings
from django.db import DatabaseError, connections
from django.db.migrations.executor import MigrationExecutor

from . import database as db
from . import migrations_state, routing
from .configuration import validate_configuration
from .errors import DbinitError
from .initializer import describe_configuration, new_result, run_step
from .results import PLANNED, SKIPPED, InitializationResult
from .seeding import SeedState


def plan(database="default", *, seed=True, on_event=None) -> InitializationResult:
    """The steps initdb would take on ``database``, each PLANNED or SKIPPED; nothing is changed."""
    start = time.perf_counter()
    result = new_result(database, plan_only=True)
    on_event = on_event or (lambda *args: None)
    admin_email = settings.DBINIT_ADMIN_EMAIL
    found = {"exists": True}

    def configuration(step):
        problems = validate_configuration(database, seed=seed)
        if problems:
            raise problems[0]
        routing.refuse_read_only(database, "initdb", ask_server=False)  # a replica has no plan
        describe_configuration(step, result)

    def existence(step):
        connection = connections[database]
        if connection.vendor == "sqlite":
            path = db.sqlite_path(connection.settings_dict)
            if path is None:
                step.status, step.summary = SKIPPED, "in-memory database"
            elif db.check_sqlite_file(path):
                step.skipped, step.summary = 1, f"{path} exists"
            else:
                found["exists"] = False
                step.status, step.summary = PLANNED, f"would create {path}"
            return
        try:
            db.connect(database, step="database")
            step.skipped, step.summary = 1, f"database {result.database.name!r} exists"
        except DbinitError as exc:
            if not db.is_missing_database(exc):
                raise
            found["exists"] = False
            step.status, step.summary = PLANNED, f"would create database {result.database.name!r}"

    def connect(step):
        if not found["exists"]:
            step.status, step.summary = SKIPPED, "database does not exist yet"
            return
        info = db.connect(database)
        reason = routing.server_read_only_reason(connections[database])
        if reason:
            raise routing.refusal(database, "initdb", reason)
        step.summary = f"{info.vendor} {info.version}, {info.round_trip_ms:.1f} ms round trip"

    def lock(step):
        step.status, step.summary = SKIPPED, "plan only"

    def migrate(step):
        if found["exists"]:
            executor = MigrationExecutor(connections[database])
            migrations_state.check_history(executor)
            pending = [migrations_state.label((m.app_label, m.name))
                       for m in migrations_state.pending_migrations(executor)]
        else:
            pending = migrations_state.offline_plan()
        step.status, step.detail = PLANNED, {"pending": pending}
        step.summary = f"would apply {len(pending)} migration(s)"

    def seed_step(step):
        if not seed:
            step.status, step.summary = SKIPPED, "--no-seed"
            return
        if not routing.hosts_seed(database):
            step.status, step.summary = SKIPPED, "the seed's tables are routed to another database"
            return
        state = SeedState.everything_missing(admin_email)
        if found["exists"]:
            try:
                state = SeedState.read(database, admin_email)
            except DatabaseError:  # tables not migrated yet: everything would be seeded
                pass
        todo = state.todo()
        step.status = PLANNED
        step.summary = f"would seed: {', '.join(todo)}" if todo else "nothing to seed"

    def verify(step):
        step.status, step.summary = SKIPPED, "plan only"

    steps = (("configuration", configuration), ("database", existence), ("connect", connect), ("lock", lock),
             ("migrate", migrate), ("seed", seed_step), ("verify", verify))
    for name, function in steps:
        if run_step(result, name, function, alias=database, on_event=on_event).error:
            break
    result.duration_ms = (time.perf_counter() - start) * 1000
    return result
