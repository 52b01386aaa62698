"""Schema repairs driven by Django's migration state (never by hand-written DDL).

* :func:`record_verified_migrations`: migration records lost while their schema
  is there. :mod:`dbinit.verification` judges each pending migration operation by
  operation; only the verified ones are recorded, nothing is re-run.
* :func:`recreate_missing_tables`, :func:`recreate_missing_columns` and
  :func:`recreate_missing_constraints`: build what the applied migration state
  has and the database lacks (a table, a column, an index, a unique / check /
  foreign-key constraint), with Django's schema editor.
* :func:`repair_nullability`: NULL / NOT NULL as the state says (NOT NULL only
  over a column without NULL rows), with the schema editor's ``alter_field``.

Every object is repaired alone, in its own transaction (a savepoint inside an
outer one on PostgreSQL): one that fails (a unique constraint over duplicate
rows, a NOT NULL column with no value for existing rows) is rolled back alone
and reported with its cause and manual steps; the others stand. A table that
SQLite must rebuild is proven to keep its row count.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from django.db import DatabaseError
from django.db.migrations.executor import MigrationExecutor

from . import django_private, errors
from .drift import Expectation, compare, describe, raw_sql_models
from .errors import DbinitError
from .schema import Catalogue

logger = logging.getLogger("dbinit")


@dataclass
class Outcome:
    """One object a repair worked on: done, or failed with the error a person acts on."""

    item: str
    done: bool
    error: DbinitError | None = None

    @property
    def text(self) -> str:
        return self.item if self.done else f"{self.item} ({self.error.message})"


def summary(outcomes: list[Outcome], verb: str) -> str:
    done = [o.item for o in outcomes if o.done]
    failed = [o.text for o in outcomes if not o.done]
    parts = [f"{verb} {', '.join(done)}"] if done else []
    if failed:
        parts.append(f"failed (rolled back alone): {'; '.join(failed)}")
    return "; ".join(parts) or "nothing was missing"


def _failed(item, exc, what) -> Outcome:
    from .database import error_text

    error = exc if isinstance(exc, DbinitError) else DbinitError(errors.E019, during=f"dbrepair ({what} {item})",
                                                                 reason=error_text(exc))
    logger.warning("Repair of %s failed: %s", item, error.message)
    return Outcome(item, False, error)


# --- lost records ---------------------------------------------------------------------------------
def record_verified_migrations(connection) -> tuple[list[str], list[str]]:
    """Record lost migrations whose effect is verified in the schema; return (recorded, left)."""
    from .verification import record, verify

    executor = MigrationExecutor(connection)
    verification = verify(executor)
    recorded = record(connection, verification)
    left = [f"{v.app}.{n}" for v in verification.apps.values() for n in v.lost if f"{v.app}.{n}" not in recorded]
    return recorded, left


# --- the applied state ----------------------------------------------------------------------------
class _Applied:
    """The applied migration state, its models by table, and the database's catalogue."""

    def __init__(self, connection):
        from .verification import applied_state

        self.connection = connection
        executor = MigrationExecutor(connection)
        self.state, _ = applied_state(executor)
        self.raw = raw_sql_models(executor.loader, executor.loader.graph.nodes)
        self.expectation = Expectation(connection, self.raw)
        self.models = list(self.expectation.models(self.state.apps))
        self.by_table = {m._meta.db_table: m for m in self.models}
        self.catalogue = Catalogue(connection)

    def drift(self):
        return compare(self.connection, self.models, self.catalogue, self.raw)


def _count(connection, table) -> int:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {connection.ops.quote_name(table)}")
        return cursor.fetchone()[0]


def _has_rows(connection, table) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT 1 FROM {connection.ops.quote_name(table)} LIMIT 1")
        return cursor.fetchone() is not None


def _keeping_rows(connection, table, change, *args):
    """Run ``change(*args)`` inside a schema editor; SQLite may rebuild the table: prove no row is lost."""
    before = _count(connection, table)
    change(*args)
    after = _count(connection, table)
    if before != after:
        raise DatabaseError(f"{table} had {before} rows and would have {after}; rolled back")


# --- tables -----------------------------------------------------------------------------------------
def recreate_missing_tables(connection) -> list[Outcome]:
    """Create each missing table of the applied migrations, alone, with its indexes."""
    applied = _Applied(connection)
    outcomes = []
    for fact in applied.drift().missing["table"]:
        model = applied.by_table[fact[1]]
        try:
            with connection.schema_editor(atomic=True) as editor:
                # create_model() without its M2M step: those tables may well still exist (and hold
                # rows); a missing through table is missing on its own.
                sql, params = editor.table_sql(model)
                editor.execute(sql, params or None)
                editor.deferred_sql.extend(django_private.model_indexes_sql(editor, model))
            outcomes.append(Outcome(fact[1], True))
        except DatabaseError as exc:
            outcomes.append(_failed(fact[1], exc, "creating"))
    return outcomes


# --- columns ------------------------------------------------------------------------------------------
def recreate_missing_columns(connection) -> list[Outcome]:
    """Add back each missing column of the applied migrations, keeping every row.

    Existing rows get the migration state's default (``default`` or ``db_default``); a NOT
    NULL column without one is not added to a table holding rows (E034 says what to do):
    dbrepair never invents values.
    """
    applied = _Applied(connection)
    outcomes = []
    for fact in applied.drift().missing["column"]:
        table, column = fact[1], fact[2]
        model = applied.by_table[table]
        opts = model._meta
        field = next(f for f in opts.local_concrete_fields if f.column == column)
        item = f"{table}.{column}"
        if not field.primary_key and not _fills_existing_rows(field) and _has_rows(connection, table):
            outcomes.append(Outcome(item, False, DbinitError(errors.E034, column=item, table=table, name=column)))
            continue
        # As AddField does: the model without the field is the "from" state.
        from_state = applied.state.clone()
        from_state.remove_field(opts.app_label, opts.model_name, field.name)
        from_model = from_state.apps.get_model(opts.app_label, opts.model_name)
        try:
            with connection.schema_editor(atomic=True) as editor:
                _keeping_rows(connection, table, editor.add_field, from_model, field)
            outcomes.append(Outcome(item, True))
        except DatabaseError as exc:
            outcomes.append(_failed(item, exc, "adding"))
    return outcomes


def _fills_existing_rows(field) -> bool:
    """Whether the migration state says what existing rows hold in ``field``.

    The cases in which makemigrations adds a column without asking for a one-off default
    (``MigrationAutodetector._generate_added_field``): nullable, a default or db_default,
    ``auto_now``, or blank text (the empty string is a value the model allows).
    """
    from django.db.models import NOT_PROVIDED

    return (field.null or field.has_default() or getattr(field, "db_default", NOT_PROVIDED) is not NOT_PROVIDED
            or getattr(field, "auto_now", False)
            or (field.blank and field.empty_strings_allowed))


# --- nullability ------------------------------------------------------------------------------------
def repair_nullability(connection) -> list[Outcome]:
    """Give each column the NULL / NOT NULL of the applied migrations, alone, as AlterField does.

    DROP NOT NULL is always safe. NOT NULL is set only when no row holds NULL there (E036
    otherwise: dbrepair never invents values). SQLite rebuilds the table, rows counted.
    """
    applied = _Applied(connection)
    outcomes = []
    for fact in applied.drift().missing["null"]:
        table, column, nullable = fact[1], fact[2], fact[3]
        model = applied.by_table[table]
        opts = model._meta
        field = next(f for f in opts.local_concrete_fields if f.column == column)
        item = f"{table}.{column} ({'NULL' if nullable else 'NOT NULL'})"
        if not nullable:
            nulls = _null_rows(connection, table, column)
            if nulls:
                outcomes.append(Outcome(item, False, DbinitError(errors.E036, column=f"{table}.{column}",
                                                                 count=nulls, table=table, name=column)))
                continue
        # As AlterField does: the "from" state has the field as the database has it now.
        as_found = field.clone()
        as_found.null = not nullable
        from_state = applied.state.clone()
        from_state.alter_field(opts.app_label, opts.model_name, field.name, as_found, True)
        from_model = from_state.apps.get_model(opts.app_label, opts.model_name)
        try:
            with connection.schema_editor(atomic=True) as editor:
                _keeping_rows(connection, table, editor.alter_field, from_model,
                              from_model._meta.get_field(field.name), field)
            outcomes.append(Outcome(item, True))
        except DatabaseError as exc:
            outcomes.append(_failed(item, exc, "changing the nullability of"))
    return outcomes


def _null_rows(connection, table, column) -> int:
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT COUNT(*) FROM {quote(table)} WHERE {quote(column)} IS NULL")
        return cursor.fetchone()[0]


# --- indexes and constraints ------------------------------------------------------------------------
def recreate_missing_constraints(connection) -> list[Outcome]:
    """Create each missing index, unique, check and foreign-key constraint, alone.

    PostgreSQL adds each with ALTER TABLE / CREATE INDEX. SQLite cannot add a unique,
    check or foreign-key constraint to a table: Django's schema editor rebuilds the
    table from the model (all its constraints at once), with the row count proven equal.
    """
    applied = _Applied(connection)
    report = applied.drift()
    outcomes = []
    rebuild: dict[str, list[str]] = {}
    for kind in ("index", "unique", "check", "foreign_key"):
        for fact in report.missing[kind]:
            model = applied.by_table[fact[1]]
            item = describe(fact)
            if connection.vendor == "sqlite" and _needs_rebuild(model, fact):
                rebuild.setdefault(fact[1], []).append(item)
                continue
            try:
                with connection.schema_editor(atomic=True) as editor:
                    _create(editor, model, fact)
                outcomes.append(Outcome(item, True))
            except DatabaseError as exc:
                outcomes.append(_failed(item, exc, "creating"))
    for table, items in rebuild.items():
        model = applied.by_table[table]
        try:
            with connection.schema_editor(atomic=True) as editor:
                _keeping_rows(connection, table, django_private.remake_table, editor, model)
            outcomes += [Outcome(item, True) for item in items]
        except DatabaseError as exc:
            outcomes += [_failed(item, exc, "rebuilding the table for") for item in items]
    return outcomes


def _named(objects, name, max_length):
    return next((o for o in objects if o.name[:max_length] == name), None)


def _fields(model, columns):
    by_column = {f.column: f for f in model._meta.local_concrete_fields}
    return [by_column[c] for c in columns]


def _needs_rebuild(model, fact) -> bool:
    """SQLite keeps unique (unconditional), check and foreign-key constraints in CREATE TABLE."""
    kind, name = fact[0], fact[2]
    if kind == "index":
        return False
    if kind == "unique" and name:
        from django.db.models import UniqueConstraint

        constraint = _named(model._meta.constraints, name, 10**6)
        return not (isinstance(constraint, UniqueConstraint) and (
            constraint.condition or constraint.contains_expressions or constraint.include or constraint.deferrable))
    return True


def _create(editor, model, fact):
    """Create one missing object with the schema editor, as the migration that made it did."""
    kind, name, columns = fact[0], fact[2], fact[3] if len(fact) > 3 else ()
    opts = model._meta
    limit = editor.connection.ops.max_name_length() or 10**6
    if kind == "index" and len(fact) > 4:  # PostgreSQL's _like index, as Django adds it with the field
        editor.execute(django_private.create_like_index_sql(editor, model, _fields(model, columns)[0]))
    elif kind == "index":
        index = _named(opts.indexes, name, limit) if name else None
        if index is not None:
            editor.add_index(model, index)
        else:
            editor.execute(django_private.create_field_index_sql(editor, model, _fields(model, columns)))
    elif kind in ("unique", "check") and name:
        editor.add_constraint(model, _named(opts.constraints, name, limit))
    elif kind == "unique":
        editor.execute(django_private.create_unique_sql(editor, model, _fields(model, columns)))
    elif kind == "check":
        editor.execute(django_private.create_field_check_sql(editor, model, _fields(model, columns)[0]))
    elif kind == "foreign_key":
        field = next(f for f in opts.local_concrete_fields if f.column == fact[2])
        editor.execute(django_private.create_fk_sql(editor, model, field))
