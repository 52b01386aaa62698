"""What the database has: its tables, columns and constraints, and which tables and columns are missing.

A constant number of queries whatever the size of the schema, and no row is
ever read: :class:`Catalogue` reads the whole catalogue in a few queries (what
Django's introspection reads, for every table at once) and falls back on
Django's introspection before anything is called missing. The comparison
against the migration state (nullability, indexes, constraints) is
:mod:`dbinit.drift`'s; :func:`verify` answers the quick question initdb's
verify step asks (tables and columns).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from functools import cached_property

from django.apps import apps as global_apps
from django.db import router


@dataclass
class SchemaReport:
    tables_expected: int = 0
    missing_tables: list[str] = field(default_factory=list)
    missing_columns: list[str] = field(default_factory=list)  # "table.column"


def is_concrete(model) -> bool:
    """Whether ``model`` has a table of its own that migrations create (not proxy, unmanaged or swapped out)."""
    opts = model._meta
    return not (opts.proxy or not opts.managed or opts.swapped)


def expected_models(connection):
    """Concrete, managed models (auto-created M2M tables included) that live in this database."""
    for model in global_apps.get_models(include_auto_created=True):
        if is_concrete(model) and router.allow_migrate_model(connection.alias, model):
            yield model


# SQLite: every table except WITHOUT ROWID ones has an implicit integer key under these names
# (a model may map its primary key to it, as wagtailsearch's FTS5 index does).
SQLITE_ROWID_ALIASES = {"rowid", "oid", "_rowid_"}

class Catalogue:
    """The database's tables, their columns and constraints, read through Django's introspection.

    Read in three steps, each at most once and only when first needed: the table list, then the
    columns of every table, then the constraints and indexes of every table (a probe that asks
    about tables and columns never pays for the last). On SQLite, Django's ``get_constraints``
    and ``get_table_description`` parse every ``CREATE TABLE`` with sqlparse (about 80 ms a
    table, seconds for a real project), so the catalogue is read with a few pragma queries
    (what those functions read too); anything that fast read does not show is then asked of
    Django's introspection before it is reported missing.
    """

    def __init__(self, connection):
        self.connection = connection
        self._columns: dict[str, dict[str, bool]] = {}
        self._constraints: dict[str, list[dict]] = {}
        self._exact: set[str] = set()  # tables whose constraints came from Django's introspection
        self._table_sql: dict[str, str] = {}
        self._partial_indexes: set[str] = set()
        self._sqlite_primary: dict[str, list] = {}  # table -> [(position, column)] of its primary key

    @cached_property
    def table_types(self) -> dict[str, str]:
        """name -> "t" (table), "v" (view), "p" (partition), "virtual" (SQLite virtual table)."""
        with self.connection.cursor() as cursor:
            if self.connection.vendor != "sqlite":
                return {t.name: t.type for t in self.connection.introspection.get_table_list(cursor)}
            # The rows Django's get_table_list reads, with the SQL that tells virtual and
            # WITHOUT ROWID tables apart (its introspection does not), in one query.
            cursor.execute("SELECT name, type, sql FROM sqlite_master "
                           "WHERE type IN ('table', 'view') AND NOT name = 'sqlite_sequence'")
            types = {}
            for name, kind, sql in cursor.fetchall():
                types[name] = kind[0]
                if kind != "table":
                    continue
                self._table_sql[name] = sql or ""
                head = (sql or "").lstrip().upper()
                if head.startswith("CREATE VIRTUAL TABLE"):
                    types[name] = "virtual"
                elif "WITHOUT ROWID" in head.rsplit(")", 1)[-1]:
                    types[name] = "t-norowid"
        return types

    @cached_property
    def _columns_read(self) -> bool:
        """Every table's columns and nullability, in one query (SQLite, PostgreSQL)."""
        self.table_types  # noqa: B018 -- SQLite: the table SQL tells virtual tables apart
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "sqlite":
                self._read_sqlite_columns(cursor)
            elif self.connection.vendor == "postgresql":
                self._read_postgresql_columns(cursor)
        return True

    @cached_property
    def _constraints_read(self) -> bool:
        """Every table's constraints and indexes, in two or three queries (SQLite, PostgreSQL)."""
        self._columns_read  # noqa: B018 -- primary keys and check constraints need the columns
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "sqlite":
                self._read_sqlite_constraints(cursor)
            elif self.connection.vendor == "postgresql":
                self._read_postgresql_constraints(cursor)
        return True

    @property
    def partial_indexes(self) -> set[str]:
        """Indexes with a WHERE clause: they cover some rows only, so they never stand in for a plain
        index or unique constraint on the same columns (Django's get_constraints does not say)."""
        self._constraints_read  # noqa: B018
        return self._partial_indexes

    def has_table(self, table) -> bool:
        return table in self.table_types

    def columns(self, table) -> dict[str, bool]:
        """column -> nullable."""
        self._columns_read  # noqa: B018 -- the bulk read fills the cache
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
        self._constraints_read  # noqa: B018
        if table not in self._constraints or (exact and table not in self._exact):
            with self.connection.cursor() as cursor:
                found = self.connection.introspection.get_constraints(cursor, table)
            self._constraints[table] = [{"name": name, **info} for name, info in found.items()]
            self._exact.add(table)
        return self._constraints[table]

    def is_exact(self, table) -> bool:
        return table in self._exact or self.connection.vendor not in ("sqlite", "postgresql")

    # The same catalogues Django's get_table_description and get_constraints read, for all tables
    # at once instead of two round trips per table.
    def _read_postgresql_columns(self, cursor):
        cursor.execute(
            "SELECT c.relname, a.attname, NOT a.attnotnull FROM pg_attribute a "
            "JOIN pg_class c ON c.oid = a.attrelid "
            "WHERE c.relkind IN ('r', 'p', 'v', 'm', 'f') AND pg_catalog.pg_table_is_visible(c.oid) "
            "AND a.attnum > 0 AND NOT a.attisdropped")
        for table, column, nullable in cursor.fetchall():
            self._columns.setdefault(table, {})[column] = nullable

    def _read_postgresql_constraints(self, cursor):
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
            "SELECT t.relname, i.relname, ix.indisunique, ix.indisprimary, ix.indpred IS NOT NULL, "
            "ARRAY(SELECT a.attname::text FROM unnest(ix.indkey) WITH ORDINALITY k(attnum, ord) "
            "LEFT JOIN pg_attribute a ON a.attrelid = ix.indrelid AND a.attnum = k.attnum "
            "WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord) "
            "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid "
            "WHERE pg_catalog.pg_table_is_visible(t.oid)")
        for table, name, unique, primary, partial, columns in cursor.fetchall():
            if partial:
                self._partial_indexes.add(name)
            constraints.setdefault(table, []).append({
                "name": name, "columns": list(columns), "primary_key": primary, "unique": unique,
                "check": False, "index": True, "foreign_key": None})
        self._constraints.update(constraints)

    def _read_sqlite_columns(self, cursor):
        cursor.execute(
            'SELECT m.name, p.name, p."notnull", p.pk FROM sqlite_master AS m '
            "JOIN pragma_table_xinfo(m.name) AS p WHERE m.type = 'table' ORDER BY m.name, p.cid")
        for table, column, notnull, pk in cursor.fetchall():
            self._columns.setdefault(table, {})[column] = not notnull
            if pk:
                self._sqlite_primary.setdefault(table, []).append((pk, column))

    def _read_sqlite_constraints(self, cursor):
        """Primary keys (from the columns' read), indexes, foreign keys and checks of every table."""
        tables = [n for n, sql in self._table_sql.items() if not sql.lstrip().upper().startswith("CREATE VIRTUAL")]
        constraints = {t: [] for t in tables}
        for table, cols in self._sqlite_primary.items():
            if table in constraints:
                constraints[table].append({"name": "__primary__", "columns": [c for _, c in sorted(cols)],
                                           "primary_key": True, "unique": False, "index": False,
                                           "check": False, "foreign_key": None})
        cursor.execute(
            'SELECT m.name, il.name, il."unique", il.partial, ii.name FROM sqlite_master AS m '
            "JOIN pragma_index_list(m.name) AS il JOIN pragma_index_info(il.name) AS ii "
            "WHERE m.type = 'table' ORDER BY m.name, il.name, ii.seqno")
        indexes = {}
        for table, index, unique, partial, column in cursor.fetchall():
            if partial:
                self._partial_indexes.add(index)
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


def compare(connection, models, existing=None) -> SchemaReport:
    """Tables and columns of ``models`` missing from the database (``existing``: a Catalogue)."""
    catalogue = existing if isinstance(existing, Catalogue) else Catalogue(connection)
    report = SchemaReport()
    seen = set()
    for model in models:
        table = model._meta.db_table
        if table in seen:
            continue
        seen.add(table)
        report.tables_expected += 1
        if not catalogue.has_table(table):
            report.missing_tables.append(table)
            continue
        for f in model._meta.local_concrete_fields:
            # has_column knows SQLite's implicit rowid (a virtual table's model may map its key to it).
            if f.column and not catalogue.has_column(table, f.column):
                report.missing_columns.append(f"{table}.{f.column}")
    return report


def verify(connection) -> SchemaReport:
    """Compare every installed model with the live database."""
    return compare(connection, expected_models(connection))
