"""Schema repairs driven by Django's migration state (never by hand-written DDL).

* :func:`record_verified_migrations`: migration records lost while the tables
  are there. Django's ``--fake-initial`` idea, checked more strictly: for each
  app, the newest migration whose resulting tables *and exact column sets*
  match the database (and after which no later table exists) is found, and it
  and its predecessors are recorded. Nothing is re-run over live data.
* :func:`recreate_missing_tables` / :func:`recreate_missing_columns`: build a
  missing table or column of an applied migration from the applied state,
  alone, with the schema editor; every other table stays as it is.
"""

from __future__ import annotations

import logging

from django.db import DatabaseError
from django.db.migrations.executor import MigrationExecutor
from django.db.migrations.recorder import MigrationRecorder

from .django_private import applied_project_state, model_indexes_sql
from .migrations_state import ordered_nodes, pending_migrations
from .routing import hosts_model
from .schema import columns_by_table, is_concrete

logger = logging.getLogger("dbinit")


def _app_tables(state, app_label) -> dict[str, set[str]]:
    tables = {}
    for model in state.apps.get_models(include_auto_created=True):
        if model._meta.app_label == app_label and is_concrete(model):
            tables[model._meta.db_table] = {f.column for f in model._meta.local_concrete_fields}
    return tables


def record_verified_migrations(connection) -> tuple[list[str], list[str]]:
    """Record lost migrations whose schema is verifiably present; return (recorded, refused)."""
    executor = MigrationExecutor(connection)
    loader = executor.loader
    applied = set(loader.applied_migrations)
    pending = pending_migrations(executor)
    if not pending:
        return [], []
    existing = columns_by_table(connection)
    order = ordered_nodes(loader.graph)
    states = {}

    def state_after(key):
        if key not in states:
            states[key] = loader.project_state(key, at_end=True)
        return states[key]

    verified_upto = {}
    for app in dict.fromkeys(m.app_label for m in pending):
        sequence = [k for k in order if k[0] == app]
        final = _app_tables(state_after(sequence[-1]), app)
        floor = max((i for i, k in enumerate(sequence) if k in applied), default=-1)
        verified_upto[app] = floor
        for index in range(len(sequence) - 1, floor, -1):
            tables = _app_tables(state_after(sequence[index]), app)
            matches = all(t in existing and existing[t] == cols for t, cols in tables.items())
            later_absent = not any(t in existing for t in set(final) - set(tables))
            if matches and later_absent:
                verified_upto[app] = index
                break
    recorder = MigrationRecorder(connection)
    recorded, refused = [], []
    for migration in pending:
        key = (migration.app_label, migration.name)
        sequence = [k for k in order if k[0] == migration.app_label]
        parents = {p.key for p in loader.graph.node_map[key].parents}
        if sequence.index(key) <= verified_upto[migration.app_label] and parents <= applied:
            recorder.record_applied(*key)
            applied.add(key)
            recorded.append(f"{key[0]}.{key[1]}")
        else:
            refused.append(f"{key[0]}.{key[1]}")
    logger.info("Recorded %d verified migration(s); %d left pending", len(recorded), len(refused))
    return recorded, refused


def _hosted(connection, model) -> bool:
    """Only what the routers allow here, as migrate's schema editor decides (never a forbidden table)."""
    return is_concrete(model) and hosts_model(connection.alias, model)


def _applied_state(connection):
    executor = MigrationExecutor(connection)
    pending_apps = {m.app_label for m in pending_migrations(executor)}
    # The state the recorded migrations describe, as migrate computes it.
    state = applied_project_state(executor)
    return state, pending_apps


def recreate_missing_tables(connection) -> list[str]:
    """Create the tables of applied migrations that are missing; return their names."""
    state, pending_apps = _applied_state(connection)
    existing = columns_by_table(connection)
    missing = [m for m in state.apps.get_models(include_auto_created=True)
               if _hosted(connection, m) and m._meta.app_label not in pending_apps
               and m._meta.db_table not in existing]
    if not missing:
        return []
    with connection.schema_editor(atomic=True) as editor:
        for model in missing:
            # create_model() without its M2M step: those tables may well still exist (and hold
            # rows); a missing through table is in `missing` on its own.
            sql, params = editor.table_sql(model)
            editor.execute(sql, params or None)
            editor.deferred_sql.extend(model_indexes_sql(editor, model))
    return [m._meta.db_table for m in missing]


def recreate_missing_columns(connection) -> list[str]:
    """Add back the columns of applied migrations that are missing, keeping every row."""
    state, pending_apps = _applied_state(connection)
    existing = columns_by_table(connection)
    added = []
    for model in state.apps.get_models():
        opts = model._meta
        if not _hosted(connection, model) or opts.app_label in pending_apps or opts.db_table not in existing:
            continue
        for field in opts.local_concrete_fields:
            if field.column in existing[opts.db_table]:
                continue
            # As AddField does: the model without the field is the "from" state.
            from_state = state.clone()
            from_state.remove_field(opts.app_label, opts.model_name, field.name)
            from_model = from_state.apps.get_model(opts.app_label, opts.model_name)
            with connection.schema_editor(atomic=True) as editor:
                before = _count(connection, opts.db_table)
                editor.add_field(from_model, field)
                after = _count(connection, opts.db_table)
                if before != after:  # SQLite rebuilds the table to add some columns: prove no row was lost
                    raise DatabaseError(f"{opts.db_table} had {before} rows and would have {after}; rolled back")
            added.append(f"{opts.db_table}.{field.column}")
    return added


def _count(connection, table) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        return cursor.fetchone()[0]
