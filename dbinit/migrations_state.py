"""Migration state: plans, applying with progress, and migration file checksums.

Thin wrappers over Django's loader, executor and recorder (never a hand-made
query on ``django_migrations``). initdb builds one executor (one loader) per
run and reuses it for the plan, the re-check after the lock and the apply.
"""

from __future__ import annotations

import hashlib
import logging
import operator
import sys
import time
from dataclasses import dataclass, field
from functools import reduce
from io import StringIO

from django.db import DatabaseError, transaction
from django.db.migrations.exceptions import InconsistentMigrationHistory
from django.db.migrations.loader import MigrationLoader
from django.db.models import Q
from django.db.transaction import TransactionManagementError

from . import errors
from .django_private import applied_project_state, discard_broken_transaction
from .errors import DbinitError

logger = logging.getLogger("dbinit")


def label(key) -> str:
    return f"{key[0]}.{key[1]}"


def ordered_nodes(graph) -> list:
    """Every migration of the graph, each after its dependencies (a deterministic order)."""
    seen, order = set(), []
    for leaf in sorted(graph.leaf_nodes()):
        for key in graph.forwards_plan(leaf):
            if key not in seen:
                seen.add(key)
                order.append(key)
    return order


def offline_plan() -> list[str]:
    """The plan for a database that does not exist yet: every migration, in order."""
    loader = MigrationLoader(None, ignore_no_migrations=True)
    return [label(key) for key in ordered_nodes(loader.graph)]


def forward_plan(executor) -> list:
    """``(migration, backwards)`` pairs to the leaf nodes, as ``migrate`` computes them."""
    return executor.migration_plan(executor.loader.graph.leaf_nodes())


def pending_migrations(executor) -> list:
    """The migrations still to apply, in order."""
    return [migration for migration, backwards in forward_plan(executor) if not backwards]


def records_missing_on_disk(loader) -> list:
    """Applied migrations that no file provides (a squash that replaces them counts as providing)."""
    replaced = {key for m in loader.disk_migrations.values() for key in (getattr(m, "replaces", None) or ())}
    return sorted(k for k in loader.applied_migrations if k not in loader.graph.nodes and k not in replaced)


def check_history(executor, step="migrate"):
    """Raise E021 for applied-before-dependency history or conflicting leaf nodes."""
    try:
        executor.loader.check_consistent_history(executor.connection)
    except InconsistentMigrationHistory as exc:
        raise DbinitError(errors.E021, step=step, reason=str(exc).rstrip(".")) from None
    conflicts = executor.loader.detect_conflicts()
    if conflicts:
        names = "; ".join(f"{', '.join(sorted(n))} in {app}" for app, n in sorted(conflicts.items()))
        raise DbinitError(errors.E021, step=step, reason=f"conflicting leaf migrations ({names}); "
                          "run python manage.py makemigrations --merge")


@dataclass
class ApplyReport:
    """The migrations one apply run applied, with each one's duration."""

    applied: list[str] = field(default_factory=list)
    durations_ms: dict = field(default_factory=dict)


def apply(executor, plan, *, on_event=None, step="migrate") -> ApplyReport:
    """Apply ``plan`` as ``manage.py migrate`` does, with the same signals.

    Each migration runs in its own transaction (DDL is transactional on both
    engines), so a failure leaves the database as it was before that migration
    and the next run carries on from there.
    """
    from django.apps import apps as global_apps
    from django.core.management.sql import emit_post_migrate_signal, emit_pre_migrate_signal
    from django.db.migrations.state import ModelState

    report = ApplyReport()
    current = {"key": None, "start": 0.0}

    def progress(action, migration=None, fake=False):
        if action == "apply_start":
            current.update(key=label((migration.app_label, migration.name)), start=time.perf_counter())
            if on_event:
                on_event("migration_start", current["key"])
        elif action == "apply_success":
            ms = (time.perf_counter() - current["start"]) * 1000
            report.applied.append(current["key"])
            report.durations_ms[current["key"]] = round(ms, 1)
            if on_event:
                on_event("migration_end", current["key"], ms)
            current["key"] = None

    executor.progress_callback = progress
    connection = executor.connection
    if plan:
        ensure_unique_history(connection)
    targets = executor.loader.graph.leaf_nodes()
    quiet = StringIO()
    pre_state = applied_project_state(executor)
    emit_pre_migrate_signal(0, False, connection.alias, stdout=quiet, apps=pre_state.apps, plan=plan)
    try:
        post_state = executor.migrate(targets, plan=plan, state=pre_state.clone())
    except Exception as exc:  # DatabaseError, or a migration's own Python (RunPython): same report
        discard_broken_transaction(connection)
        record_checksums(connection, report.applied)
        raise _migration_error(exc, connection, current["key"], step) from None
    post_state.clear_delayed_apps_cache()
    post_apps = post_state.apps
    with post_apps.bulk_update():
        keys = []
        for model_state in post_apps.real_models:
            key = model_state.app_label, model_state.name_lower
            keys.append(key)
            post_apps.unregister_model(*key)
    post_apps.render_multiple([ModelState.from_model(global_apps.get_model(*k)) for k in keys])
    # dbinit's post_migrate receiver (dbinit.signals) records the checksums of `plan`.
    emit_post_migrate_signal(0, False, connection.alias, stdout=quiet, apps=post_apps, plan=plan)
    return report


def _root_cause(exc: BaseException) -> BaseException:
    """The first database error behind ``exc`` (Django's SQLite schema editor can mask it)."""
    seen = exc
    while seen is not None:
        if isinstance(seen, DatabaseError) and not isinstance(seen, TransactionManagementError):
            return seen
        seen = seen.__cause__ or seen.__context__
    return exc


def _migration_error(exc, connection, key, step) -> DbinitError:
    from .database import ENVIRONMENT_ERRORS, classify, error_text

    cause = _root_cause(exc)
    if isinstance(cause, DatabaseError):
        error, _ = classify(cause, connection.alias, step)
        # Not the migration's fault: the database's state or the connection (each has its own fix).
        if error.code in ENVIRONMENT_ERRORS:
            return error
        reason = error.context["reason"]
    else:
        reason = error_text(cause, with_type=True)
    return DbinitError(errors.E020, step=step, migration=key or "?", reason=reason)


# --- checksums ---------------------------------------------------------------------------
def migration_file(app_label: str, name: str, loader=None):
    """Path of a migration's source file, or None if it is not on disk."""
    module = sys.modules.get(f"{_migrations_module(app_label)}.{name}")
    if module is None and loader is not None:
        migration = loader.disk_migrations.get((app_label, name))
        module = sys.modules.get(type(migration).__module__) if migration else None
    return getattr(module, "__file__", None)


def _migrations_module(app_label):
    module, _ = MigrationLoader.migrations_module(app_label)
    return module


def file_checksum(path) -> str | None:
    try:
        with open(path, "rb") as fh:
            return hashlib.sha256(fh.read()).hexdigest()
    except OSError:
        return None


def record_checksums(connection, labels) -> int:
    """Store the checksum of each applied migration's file (replacing an older one)."""
    if not labels:
        return 0
    from .models import MigrationChecksum

    table = MigrationChecksum._meta.db_table
    try:
        with connection.cursor() as cursor:
            if table not in connection.introspection.table_names(cursor):
                return 0
        rows = []
        for item in labels:
            app, name = item.split(".", 1)
            digest = file_checksum(migration_file(app, name))
            if digest:
                rows.append(MigrationChecksum(app=app, name=name, checksum=digest))
        manager = MigrationChecksum.objects.using(connection.alias)
        if rows:
            stale = reduce(operator.or_, (Q(app=r.app, name=r.name) for r in rows))
            with transaction.atomic(using=connection.alias):
                manager.filter(stale).delete()
                manager.bulk_create(rows)
        return len(rows)
    except DatabaseError as exc:  # bookkeeping must never fail an initialisation
        logger.warning("Could not record migration checksums: %s", exc)
        return 0


# --- one record per migration --------------------------------------------------------------
# Django's recorder checks "already applied?" and then inserts, in two statements: two processes
# applying the same migration (a lock that did not hold, a plain `migrate` beside initdb) both
# insert. A unique index on (app, name) makes the second insert fail inside the migration's own
# transaction instead, so the history cannot hold a migration twice. Django has no API for the
# index or for duplicates, hence these statements on the recorder's table; they go through the
# recorder's model where the ORM can say it.
HISTORY_UNIQUE_INDEX = "dbinit_migrations_app_name_uniq"


def duplicate_records(connection) -> dict[str, int]:
    """``{"app.name": copies}`` for every migration recorded more than once."""
    from django.db.migrations.recorder import MigrationRecorder
    from django.db.models import Count

    recorder = MigrationRecorder(connection)
    if not recorder.has_table():
        return {}
    rows = (recorder.migration_qs.values("app", "name").annotate(copies=Count("id"))
            .filter(copies__gt=1).order_by("app", "name"))
    return {label((r["app"], r["name"])): r["copies"] for r in rows}


def remove_duplicate_records(connection) -> list[str]:
    """Delete every later copy of a migration record, keeping the earliest; then make copies impossible."""
    from django.db.migrations.recorder import MigrationRecorder
    from django.db.models import Min

    recorder = MigrationRecorder(connection)
    duplicates = duplicate_records(connection)
    if duplicates:
        keep = recorder.migration_qs.values("app", "name").annotate(first=Min("id")).values_list("first", flat=True)
        dupes = recorder.migration_qs.exclude(id__in=list(keep))
        dupes.delete()
    ensure_unique_history(connection)
    return sorted(duplicates)


def ensure_unique_history(connection) -> bool:
    """Create the unique index on the recorder's table unless it exists; False while duplicates prevent it."""
    from django.db.migrations.recorder import MigrationRecorder

    recorder = MigrationRecorder(connection)
    recorder.ensure_schema()
    table = connection.ops.quote_name(recorder.Migration._meta.db_table)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE UNIQUE INDEX IF NOT EXISTS {HISTORY_UNIQUE_INDEX} ON {table} (app, name)")
    except DatabaseError as exc:
        # Duplicates already there (E061: dbrepair removes them), or a concurrent creation.
        logger.warning("History index not created: %s", str(exc).strip().splitlines()[0] if str(exc) else exc)
        return False
    return True
