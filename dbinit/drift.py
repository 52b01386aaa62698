"""Schema drift: what the migration state says the database has, against what it has.

A model's schema is reduced to *facts* (hashable tuples): its table, each
column, each column's nullability, each index, unique, check and foreign-key
constraint. Constraints are compared by what they cover (kind and columns,
and the name when the migration gave one), never by generated names, which
differ between engines and Django versions.

The expected side comes from a migration state's rendered models (the state
of the applied migrations for the health check, the states around one
migration for :mod:`dbinit.verification`); the actual side from Django's
introspection (``get_table_list``, ``get_table_description``,
``get_constraints``), read lazily, one table at a time and at most once
(:class:`Catalogue`): one pass over the catalogue, no row is read.

What dbinit cannot judge is never reported as damage: a virtual table (SQLite
FTS5), a view, a model whose table a migration built with raw SQL
(``SeparateDatabaseAndState``), a check constraint whose columns cannot be
derived. Such constructs are only checked for their table and columns and are
listed at info level.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from . import django_private
from .routing import hosts_model
from .schema import Catalogue, in_another_schema, is_concrete

# Fact kinds, in report order.
KINDS = ("table", "column", "null", "index", "unique", "check", "foreign_key")
# The cheap question (initdb's verify step, start-up on the fingerprint's fast path): is every table
# and column there?
STRUCTURAL = frozenset({"table", "column"})


def describe(fact) -> str:
    """A fact as a person reads it, always with its table."""
    kind, table = fact[0], fact[1]
    if kind == "table":
        return table
    if kind == "column":
        return f"{table}.{fact[2]}"
    if kind == "null":
        return f"{table}.{fact[2]} ({'NULL' if fact[3] else 'NOT NULL'} expected)"
    if kind == "foreign_key":
        return f"{table}.{fact[2]} -> {fact[3]}"
    name, columns = fact[2], fact[3]
    cover = f"({', '.join(columns)})" if columns else "(expressions)"
    if len(fact) > 4:  # an index with an operator class (PostgreSQL's _like index)
        cover += f" {fact[4]}"
    return f"{table}: {name} {cover}" if name else f"{table} {cover}"


@dataclass
class ModelSchema:
    """The facts one model's table should show, and what of it cannot be judged."""

    table: str
    facts: list[tuple] = field(default_factory=list)
    unjudged: list[str] = field(default_factory=list)  # "table: why"
    structural_only: bool = False  # only table and columns are checked


class Expectation:
    """Turns rendered models into facts for one connection (its features decide what Django creates)."""

    def __init__(self, connection, raw_sql_models=frozenset()):
        self.connection = connection
        # (app_label, model_name) whose table came from raw SQL or state-only operations.
        self.raw_sql_models = raw_sql_models
        self._editor = None

    @property
    def editor(self):
        # A schema editor that only collects SQL: asked whether Django would create a constraint.
        if self._editor is None:
            self._editor = self.connection.schema_editor(collect_sql=True, atomic=False)
        return self._editor

    def is_expected(self, model) -> bool:
        """A concrete model that migrations create in this database."""
        return is_concrete(model) and hosts_model(self.connection.alias, model)

    def models(self, apps, app_labels=None):
        """Concrete models (auto-created M2M tables included) of ``apps`` living in this database."""
        for model in apps.get_models(include_auto_created=True):
            if app_labels is not None and model._meta.app_label not in app_labels:
                continue
            if self.is_expected(model):
                yield model

    def schema(self, model, catalogue: Catalogue | None = None, kinds=KINDS) -> ModelSchema:
        """The facts of ``kinds`` that ``model``'s table should show (table and columns always)."""
        opts = model._meta
        table = opts.db_table
        result = ModelSchema(table)
        facts = result.facts
        facts.append(("table", table))
        for f in opts.local_concrete_fields:
            if f.column:
                facts.append(("column", table, f.column))
        kind = catalogue.table_types.get(table) if catalogue is not None else None
        if kind in ("virtual", "v"):
            result.structural_only = True
            result.unjudged.append(f"{table}: {'virtual table' if kind == 'virtual' else 'view'}, "
                                   "only its columns are checked")
            return result
        if (opts.app_label, opts.model_name) in self.raw_sql_models:
            result.structural_only = True
            result.unjudged.append(f"{table}: built by raw SQL in a migration, only its columns are checked")
            return result
        if set(kinds) <= STRUCTURAL:
            return result  # no constraint is asked about: none is derived (no SQL is collected)
        features = self.connection.features
        for f in opts.local_concrete_fields:
            if not f.column:
                continue
            if not f.primary_key and not getattr(f, "generated", False):
                facts.append(("null", table, f.column, bool(f.null)))
            like = self._like_opclass(model, f)
            if like:  # PostgreSQL's second index on an indexed varchar/text column, for LIKE
                facts.append(("index", table, None, (f.column,), like))
            if f.primary_key:
                continue
            if f.unique:
                facts.append(("unique", table, None, (f.column,)))
            elif f.db_index:
                facts.append(("index", table, None, (f.column,)))
            if f.db_check(self.connection) and not getattr(f, "generated", False):
                facts.append(("check", table, None, (f.column,)))
            remote = getattr(f, "remote_field", None)
            if (remote is not None and f.db_constraint and features.supports_foreign_keys
                    and getattr(remote, "model", None) is not None and not isinstance(remote.model, str)):
                target = remote.model._meta
                if is_concrete(remote.model) and hosts_model(self.connection.alias, remote.model):
                    facts.append(("foreign_key", table, f.column, target.db_table))
        for fields in opts.unique_together:
            facts.append(("unique", table, None, tuple(opts.get_field(n).column for n in fields)))
        for index in opts.indexes:
            if index.contains_expressions and not features.supports_expression_indexes:
                continue
            columns = tuple(opts.get_field(n.lstrip("-")).column for n in index.fields)
            facts.append(("index", table, self._name(index.name), columns))
        for constraint in opts.constraints:
            if constraint.create_sql(model, self.editor) is None:
                continue  # this engine does not support it: Django never created it
            columns = self._constraint_columns(model, constraint)
            kind = "check" if not hasattr(constraint, "fields") else "unique"
            facts.append((kind, table, self._name(constraint.name), columns))
        return result

    def _like_opclass(self, model, field) -> str | None:
        """The operator class of the _like index Django adds for ``field`` (PostgreSQL), or None."""
        if self.connection.vendor != "postgresql" or getattr(field, "generated", False):
            return None
        statement = django_private.create_like_index_sql(self.editor, model, field)
        if statement is None:
            return None
        sql = str(statement)
        return next((name for name in ("varchar_pattern_ops", "text_pattern_ops") if name in sql), None)

    def _name(self, name):
        # PostgreSQL cuts identifiers at 63 bytes; the name Django asked for is what it got.
        return name[: self.connection.ops.max_name_length() or len(name)]

    @staticmethod
    def _constraint_columns(model, constraint) -> tuple:
        fields = getattr(constraint, "fields", None) or ()
        try:
            return tuple(model._meta.get_field(n).column for n in fields)
        except Exception:  # FieldDoesNotExist on an odd state: compared by name alone
            return ()


def _matches(fact, info) -> bool:
    """Whether one introspected constraint provides ``fact`` (by what it covers)."""
    kind, columns = fact[0], fact[3]
    name = fact[2]
    if name:  # a name the migration chose is used verbatim on every engine: it alone decides
        return info["name"] == name
    got = tuple(info.get("columns") or ())
    if not columns or None in got:
        return False
    if kind == "index":
        return (info.get("index") or info.get("unique") or info.get("primary_key")) and got == columns
    if kind == "unique":
        return (info.get("unique") or info.get("primary_key")) and set(got) == set(columns)
    if kind == "check":
        return bool(info.get("check")) and set(got) == set(columns)
    return False


def present(fact, catalogue: Catalogue) -> bool:
    """Whether the database shows ``fact``."""
    kind, table = fact[0], fact[1]
    if kind == "table":
        return catalogue.has_table(table)
    if not catalogue.has_table(table):
        return False
    if kind == "column":
        return catalogue.has_column(table, fact[2])
    if len(fact) > 4:  # an index with an operator class: only the catalogue read shows those
        return (fact[3], fact[4]) in catalogue.opclass_indexes.get(table, ())
    if kind == "null":
        columns = catalogue.columns(table)
        return fact[2] not in columns or columns[fact[2]] == fact[3]  # a missing column is its own fact
    # Indexes that cover other rows or order otherwise never stand in for an unnamed plain one.
    special = catalogue.partial_indexes | (catalogue.opclass_index_names if kind == "index" else set())
    if _shows(fact, catalogue.constraints(table), special):
        return True
    if catalogue.is_exact(table):
        return False
    # Not in the fast read: Django's introspection has the last word before anything is reported.
    return _shows(fact, catalogue.constraints(table, exact=True), special)


def _shows(fact, constraints, special=frozenset()) -> bool:
    """Whether one of ``constraints`` provides ``fact``; an index named in ``special`` (partial, or with
    another operator class) only counts for a fact that names it."""
    if fact[0] == "foreign_key":
        return any(info.get("foreign_key") and info["foreign_key"][0] == fact[3]
                   and list(info.get("columns") or ()) == [fact[2]] for info in constraints)
    return any(_matches(fact, info) for info in constraints if fact[2] or info["name"] not in special)


@dataclass
class DriftReport:
    """What the database lacks against a migration state, by kind, each item naming its table."""

    tables_expected: int = 0
    missing: dict[str, list[tuple]] = field(default_factory=lambda: {k: [] for k in KINDS})
    unjudged: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(self.missing.values())

    def names(self, kind) -> list[str]:
        return [describe(f) for f in self.missing[kind]]


def installed_models(connection) -> list:
    """The installed models this database holds, as it must hold them once the migration set is the
    one applied (just migrated, or as last verified): no migration graph is needed to list them."""
    from django.apps import apps

    return list(Expectation(connection).models(apps))


def compare(connection, models, catalogue: Catalogue | None = None, raw_sql_models=frozenset(),
            kinds=KINDS) -> DriftReport:
    """Compare rendered ``models`` with the database: one pass, each table introspected once.

    ``kinds``: the fact kinds to judge (e.g. ``STRUCTURAL``); the others are not looked at.
    """
    catalogue = catalogue or Catalogue(connection)
    expectation = Expectation(connection, raw_sql_models)
    report = DriftReport()
    seen = set()
    for model in models:
        table = model._meta.db_table
        if table in seen:
            continue
        seen.add(table)
        report.tables_expected += 1
        if in_another_schema(table):
            report.unjudged.append(f"{table}: a table in another schema, not checked")
            continue
        if not catalogue.has_table(table):
            if "table" in kinds:
                report.missing["table"].append(("table", table))
            continue
        schema = expectation.schema(model, catalogue, kinds)
        report.unjudged += schema.unjudged
        for fact in schema.facts[1:]:
            if fact[0] not in kinds:
                continue
            if fact[0] == "null" and fact[2] not in catalogue.columns(table):
                continue
            if not present(fact, catalogue):
                report.missing[fact[0]].append(fact)
    return report


def raw_sql_models(loader, keys) -> frozenset:
    """Models whose database shape a migration among ``keys`` declared only in its state.

    ``SeparateDatabaseAndState`` and ``RunSQL(state_operations=...)`` say what the state
    is without Django building it: the table exists, but its indexes and constraints are
    whatever the SQL made.
    """
    from django.db.migrations.operations import RunSQL, SeparateDatabaseAndState

    found = set()
    for key in keys:
        migration = loader.graph.nodes.get(key)
        for op in getattr(migration, "operations", ()):
            if isinstance(op, SeparateDatabaseAndState) or (isinstance(op, RunSQL) and op.state_operations):
                for state_op in op.state_operations:
                    name = getattr(state_op, "name_lower", None) or getattr(state_op, "model_name_lower", None)
                    if name:
                        found.add((migration.app_label, name))
    return frozenset(found)
