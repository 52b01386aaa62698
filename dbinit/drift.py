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

import re
from dataclasses import dataclass, field
from functools import cached_property

from django.db import router

# SQLite: every table except WITHOUT ROWID ones has an implicit integer key under these names
# (a model may map its primary key to it, as wagtailsearch's FTS5 index does).
SQLITE_ROWID_ALIASES = {"rowid", "oid", "_rowid_"}

# Fact kinds, in report order.
KINDS = ("table", "column", "null", "index", "unique", "check", "foreign_key")


def concrete(model) -> bool:
    """A model that owns a table migrations create: not proxy, unmanaged or swapped out."""
    opts = model._meta
    return not (opts.proxy or not opts.managed or opts.swapped)


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
    return f"{table}: {name} {cover}" if name else f"{table} {cover}"


class Catalogue:
    """The database's tables, their columns and constraints, read through Django's introspection.

    Each table is introspected at most once, when first asked about. On SQLite,
    Django's ``get_constraints`` and ``get_table_description`` parse every
    ``CREATE TABLE`` with sqlparse (about 80 ms a table, seconds for a real
    project), so the whole catalogue is first read with three pragma queries
    (what those functions read too); anything that fast read does not show is
    then asked of Django's introspection before it is reported missing.
    """

    def __init__(self, connection):
        self.connection = connection
        self._columns: dict[str, dict[str, bool]] = {}
        self._constraints: dict[str, list[dict]] = {}
        self._exact: set[str] = set()  # tables whose constraints came from Django's introspection
        self._table_sql: dict[str, str] = {}

    @cached_property
    def table_types(self) -> dict[str, str]:
        """name -> "t" (table), "v" (view), "p" (partition), "virtual" (SQLite virtual table)."""
        with self.connection.cursor() as cursor:
            types = {t.name: t.type for t in self.connection.introspection.get_table_list(cursor)}
            if self.connection.vendor == "sqlite":
                # Django's introspection does not tell virtual tables apart; sqlite_master does.
                cursor.execute("SELECT name, sql FROM sqlite_master WHERE type = 'table'")
                for name, sql in cursor.fetchall():
                    self._table_sql[name] = sql or ""
                    head = (sql or "").lstrip().upper()
                    if head.startswith("CREATE VIRTUAL TABLE"):
                        types[name] = "virtual"
                    elif "WITHOUT ROWID" in head.rsplit(")", 1)[-1]:
                        types[name] = "t-norowid"
                self._read_sqlite()
            elif self.connection.vendor == "postgresql":
                self._read_postgresql(cursor)
        return types

    def has_table(self, table) -> bool:
        return table in self.table_types

    def columns(self, table) -> dict[str, bool]:
        """column -> nullable."""
        self.table_types  # noqa: B018 -- the SQLite bulk read fills the cache
        if table not in self._columns:
            with self.connection.cursor() as cursor:
                description = self.connection.introspection.get_table_description(cursor, table)
            self._columns[table] = {c.name: bool(c.null_ok) for c in description}
        return self._columns[table]

    def has_column(self, table, column) -> bool:
        if column in self.columns(table):
            return True
        return (self.connection.vendor == "sqlite" and column.lower() in SQLITE_ROWID_ALIASES
                and self.table_types.get(table) in ("t", "virtual"))

    def constraints(self, table, exact=False) -> list[dict]:
        """Constraints and indexes as ``get_constraints`` describes them (``exact``: from it)."""
        self.table_types  # noqa: B018
        if table not in self._constraints or (exact and table not in self._exact):
            with self.connection.cursor() as cursor:
                found = self.connection.introspection.get_constraints(cursor, table)
            self._constraints[table] = [{"name": name, **info} for name, info in found.items()]
            self._exact.add(table)
        return self._constraints[table]

    def is_exact(self, table) -> bool:
        return table in self._exact or self.connection.vendor not in ("sqlite", "postgresql")

    def _read_postgresql(self, cursor):
        """Columns, constraints and indexes of every visible table in three queries.

        The same catalogues Django's ``get_table_description`` and ``get_constraints`` read,
        for all tables at once instead of two round trips per table.
        """
        cursor.execute(
            "SELECT c.relname, a.attname, NOT a.attnotnull FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND pg_catalog.pg_table_is_visible(c.oid) "
            "AND a.attnum > 0 AND NOT a.attisdropped")
        for table, column, nullable in cursor.fetchall():
            self._columns.setdefault(table, {})[column] = nullable
        constraints: dict[str, list[dict]] = {t: [] for t in self._columns}
        cursor.execute(
            "SELECT cl.relname, c.conname, c.contype, "
            "ARRAY(SELECT a.attname::text FROM unnest(c.conkey) WITH ORDINALITY k(attnum, ord) "
            "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = k.attnum ORDER BY k.ord), "
            "fcl.relname FROM pg_constraint c JOIN pg_class cl ON cl.oid = c.conrelid "
            "LEFT JOIN pg_class fcl ON fcl.oid = c.confrelid "
            "WHERE pg_catalog.pg_table_is_visible(cl.oid)")
        for table, name, kind, columns, target in cursor.fetchall():
            constraints.setdefault(table, []).append({
                "name": name, "columns": list(columns), "primary_key": kind == "p", "unique": kind in ("p", "u"),
                "check": kind == "c", "index": False, "foreign_key": (target, None) if kind == "f" else None})
        cursor.execute(
            "SELECT t.relname, i.relname, ix.indisunique, ix.indisprimary, "
            "ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) "
            "LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum "
            "WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord) "
            "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid "
            "WHERE pg_catalog.pg_table_is_visible(t.oid)")
        for table, name, unique, primary, columns in cursor.fetchall():
            constraints.setdefault(table, []).append({
                "name": name, "columns": list(columns), "primary_key": primary, "unique": unique,
                "check": False, "index": True, "foreign_key": None})
        self._constraints.update(constraints)

    def _read_sqlite(self):
        """Columns, indexes and foreign keys of every table in three queries."""
        tables = [n for n, sql in self._table_sql.items() if not sql.lstrip().upper().startswith("CREATE VIRTUAL")]
        constraints = {t: [] for t in tables}
        with self.connection.cursor() as cursor:
            cursor.execute(
                'SELECT m.name, p.name, p."notnull", p.pk FROM sqlite_master AS m '
                "JOIN pragma_table_xinfo(m.name) AS p WHERE m.type = 'table' ORDER BY m.name, p.cid")
            primary = {}
            for table, column, notnull, pk in cursor.fetchall():
                self._columns.setdefault(table, {})[column] = not notnull
                if pk:
                    primary.setdefault(table, []).append((pk, column))
            for table, cols in primary.items():
                if table in constraints:
                    constraints[table].append({"name": "__primary__", "columns": [c for _, c in sorted(cols)],
                                               "primary_key": True, "unique": False, "index": False,
                                               "check": False, "foreign_key": None})
            cursor.execute(
                'SELECT m.name, il.name, il."unique", ii.name FROM sqlite_master AS m '
                "JOIN pragma_index_list(m.name) AS il JOIN pragma_index_info(il.name) AS ii "
                "WHERE m.type = 'table' ORDER BY m.name, il.name, ii.seqno")
            indexes = {}
            for table, index, unique, column in cursor.fetchall():
                entry = indexes.setdefault((table, index), {"name": index, "columns": [], "unique": bool(unique),
                                                            "index": True, "primary_key": False,
                                                            "check": False, "foreign_key": None})
                entry["columns"].append(column)
            for (table, _), entry in indexes.items():
                if table in constraints:
                    constraints[table].append(entry)
            cursor.execute(
                'SELECT m.name, f.id, f."table", f."from", f."to" FROM sqlite_master AS m '
                "JOIN pragma_foreign_key_list(m.name) AS f WHERE m.type = 'table' ORDER BY m.name, f.id, f.seq")
            fks = {}
            for table, fk_id, target, column, target_column in cursor.fetchall():
                entry = fks.setdefault((table, fk_id), {"name": f"fk_{fk_id}", "columns": [], "unique": False,
                                                        "index": False, "primary_key": False, "check": False,
                                                        "foreign_key": (target, target_column)})
                entry["columns"].append(column)
            for (table, _), entry in fks.items():
                if table in constraints:
                    constraints[table].append(entry)
        for table in tables:
            constraints[table] += _sqlite_checks(self._table_sql[table], self._columns.get(table, {}))
        self._constraints.update(constraints)


_NAMED_CHECK = re.compile(r'CONSTRAINT\s+"?(\w+)"?\s+CHECK\s*\(', re.IGNORECASE)
_CHECK = re.compile(r"\bCHECK\s*\(", re.IGNORECASE)
_QUOTED = re.compile(r'"([^"]+)"')


def _sqlite_checks(sql, columns) -> list[dict]:
    """Check constraints of an SQLite table, read from its CREATE TABLE (names, and columns they use)."""
    found = []
    for match in _CHECK.finditer(sql):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        body = sql[match.end():end]
        named = [m for m in _NAMED_CHECK.finditer(sql) if m.end() == match.end()]
        used = [c for c in dict.fromkeys(_QUOTED.findall(body)) if c in columns]
        found.append({"name": named[0].group(1) if named else "", "columns": used, "check": True,
                      "unique": False, "index": False, "primary_key": False, "foreign_key": None})
    return found


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
        return concrete(model) and router.allow_migrate_model(self.connection.alias, model)

    def models(self, apps, app_labels=None):
        """Concrete models (auto-created M2M tables included) of ``apps`` living in this database."""
        for model in apps.get_models(include_auto_created=True):
            if app_labels is not None and model._meta.app_label not in app_labels:
                continue
            if self.is_expected(model):
                yield model

    def schema(self, model, catalogue: Catalogue | None = None) -> ModelSchema:
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
        features = self.connection.features
        for f in opts.local_concrete_fields:
            if not f.column:
                continue
            if not f.primary_key and not getattr(f, "generated", False):
                facts.append(("null", table, f.column, bool(f.null)))
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
                if concrete(remote.model) and router.allow_migrate_model(self.connection.alias, remote.model):
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
    if kind == "null":
        columns = catalogue.columns(table)
        return fact[2] not in columns or columns[fact[2]] == fact[3]  # a missing column is its own fact
    if _shows(fact, catalogue.constraints(table)):
        return True
    if catalogue.is_exact(table):
        return False
    # Not in the fast read: Django's introspection has the last word before anything is reported.
    return _shows(fact, catalogue.constraints(table, exact=True))


def _shows(fact, constraints) -> bool:
    if fact[0] == "foreign_key":
        return any(info.get("foreign_key") and info["foreign_key"][0] == fact[3]
                   and list(info.get("columns") or ()) == [fact[2]] for info in constraints)
    return any(_matches(fact, info) for info in constraints)


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


def compare(connection, models, catalogue: Catalogue | None = None, raw_sql_models=frozenset()) -> DriftReport:
    """Compare rendered ``models`` with the database: one pass, each table introspected once."""
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
        if not catalogue.has_table(table):
            report.missing["table"].append(("table", table))
            continue
        schema = expectation.schema(model, catalogue)
        report.unjudged += schema.unjudged
        for fact in schema.facts[1:]:
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
