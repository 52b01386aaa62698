"""What the database has: its tables, columns and constraints.

A constant number of queries whatever the size of the schema, and no row is
ever read: :class:`Catalogue` reads the whole catalogue in a few queries (what
Django's introspection reads, for every table at once) and falls back on
Django's introspection before anything is called missing. Every comparison
against models or a migration state (tables, columns, nullability, indexes,
constraints) is :mod:`dbinit.drift`'s; initdb's verify step asks it for tables
and columns only (``kinds=drift.STRUCTURAL``).
"""

from __future__ import annotations

import re
from functools import cached_property


def in_another_schema(table) -> bool:
    """``db_table = '"schema"."table"'``: a table outside the schema the catalogue reads, never judged."""
    return '"' in table or "." in table


def is_concrete(model) -> bool:
    """Whether ``model`` has a table of its own that migrations create (not proxy, unmanaged or swapped out)."""
    opts = model._meta
    return not (opts.proxy or not opts.managed or opts.swapped)


# SQLite: every table except WITHOUT ROWID ones has an implicit integer key under these names
# (a model may map its primary key to it, as wagtailsearch's FTS5 index does).
SQLITE_ROWID_ALIASES = {"rowid", "oid", "_rowid_"}

class Catalogue:
    """The database's tables, their columns and constraints, read through Django's introspection.

    Each table is introspected at most once, when first asked about. On SQLite,
    Django's ``get_constraints`` and ``get_table_description`` parse every
    ``CREATE TABLE`` with sqlparse (about 80 ms a table, seconds for a real
    project), so the whole catalogue is first read in bulk (what those functions
    read too); anything that fast read does not show is then asked of Django's
    introspection before it is reported missing.

    Two bulk reads, each done once and only when needed: the tables and their
    columns (one query on PostgreSQL; all that initdb's verify step and a start-up
    check ask), and the constraints and indexes (what the drift comparison asks).
    """

    def __init__(self, connection):
        self.connection = connection
        self._columns: dict[str, dict[str, bool]] = {}
        self._constraints: dict[str, list[dict]] = {}
        self._exact: set[str] = set()  # tables whose constraints came from Django's introspection
        self._table_sql: dict[str, str] = {}
        self._sqlite_primary: dict[str, list[tuple[int, str]]] = {}  # from the column read
        self._partial_indexes: set[str] = set()
        # PostgreSQL: table -> {(columns, operator class)} of its whole-table indexes whose columns all
        # use one non-default operator class (the _like indexes; get_constraints does not say either).
        self._opclass_indexes: dict[str, set[tuple]] = {}
        self._opclass_index_names: set[str] = set()  # every index with a non-default operator class
        self._constraints_read = False

    @cached_property
    def table_types(self) -> dict[str, str]:
        """name -> "t" (table), "v" (view), "p" (partition), "virtual" (SQLite virtual table)."""
        with self.connection.cursor() as cursor:
            if self.connection.vendor == "postgresql":
                return self._read_postgresql_tables(cursor)
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
                self._read_sqlite_columns(cursor)
        return types

    @property
    def partial_indexes(self) -> set[str]:
        """Indexes with a WHERE clause: they cover some rows only, so they never stand in for a plain
        index or unique constraint on the same columns (Django's get_constraints does not say)."""
        self._read_constraints()
        return self._partial_indexes

    @property
    def opclass_indexes(self) -> dict[str, set[tuple]]:
        """PostgreSQL: table -> {(columns, operator class)} of the indexes with one non-default class."""
        self._read_constraints()
        return self._opclass_indexes

    @property
    def opclass_index_names(self) -> set[str]:
        """PostgreSQL: indexes with a non-default operator class on some column. A _like index orders
        by bytes for LIKE: it never stands in for the plain index on the same column (Django makes both,
        and get_constraints does not tell them apart)."""
        self._read_constraints()
        return self._opclass_index_names

    def has_table(self, table) -> bool:
        return table in self.table_types

    def columns(self, table) -> dict[str, bool]:
        """column -> nullable."""
        self.table_types  # noqa: B018 -- the bulk read fills the cache
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
        self._read_constraints()
        if table not in self._constraints or (exact and table not in self._exact):
            with self.connection.cursor() as cursor:
                found = self.connection.introspection.get_constraints(cursor, table)
            self._constraints[table] = [{"name": name, **info} for name, info in found.items()]
            self._exact.add(table)
        return self._constraints[table]

    def is_exact(self, table) -> bool:
        return table in self._exact or self.connection.vendor not in ("sqlite", "postgresql")

    def _read_constraints(self):
        if self._constraints_read:
            return
        self.table_types  # noqa: B018 -- the tables first: the constraints are read per table
        self._constraints_read = True
        if self.connection.vendor == "postgresql":
            with self.connection.cursor() as cursor:
                self._read_postgresql_constraints(cursor)
        elif self.connection.vendor == "sqlite":
            self._read_sqlite_constraints()

    def _read_postgresql_tables(self, cursor) -> dict[str, str]:
        """Every visible table, view and partition with its columns, in one query.

        The tables ``get_table_list`` lists (same filter, same types) joined with the columns
        ``get_table_description`` reads, for all tables at once.
        """
        cursor.execute(
            "SELECT c.relname, CASE WHEN c.relispartition THEN 'p' WHEN c.relkind IN ('m', 'v') THEN 'v' "
            "ELSE 't' END, a.attname, NOT a.attnotnull FROM pg_catalog.pg_class c "
            "JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped "
            "WHERE c.relkind IN ('f', 'm', 'p', 'r', 'v') AND n.nspname NOT IN ('pg_catalog', 'pg_toast') "
            "AND pg_catalog.pg_table_is_visible(c.oid)")
        types: dict[str, str] = {}
        ignored = set(self.connection.introspection.ignored_tables)
        for table, kind, column, nullable in cursor.fetchall():
            if table in ignored:
                continue
            types[table] = kind
            columns = self._columns.setdefault(table, {})
            if column is not None:
                columns[column] = nullable
        return types

    def _read_postgresql_constraints(self, cursor):
        """Constraints and indexes of every visible table in two queries.

        The same catalogues Django's ``get_constraints`` reads, for all tables at once
        instead of one round trip per table.
        """
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
            "WHERE k.ord <= ix.indnkeyatts ORDER BY k.ord), "
            "ARRAY(SELECT DISTINCT CASE WHEN o.opcdefault THEN '' ELSE o.opcname::text END "
            "FROM unnest(ix.indclass::oid[]) AS k(oid) JOIN pg_opclass o ON o.oid = k.oid) "
            "FROM pg_index ix JOIN pg_class t ON t.oid = ix.indrelid JOIN pg_class i ON i.oid = ix.indexrelid "
            "WHERE pg_catalog.pg_table_is_visible(t.oid)")
        for table, name, unique, primary, partial, columns, opclasses in cursor.fetchall():
            if any(opclasses):
                self._opclass_index_names.add(name)
            if partial:
                self._partial_indexes.add(name)
            elif len(opclasses) == 1 and opclasses[0] and None not in columns:
                self._opclass_indexes.setdefault(table, set()).add((tuple(columns), opclasses[0]))
            constraints.setdefault(table, []).append({
                "name": name, "columns": list(columns), "primary_key": primary, "unique": unique,
                "check": False, "index": True, "foreign_key": None})
        self._constraints.update(constraints)

    def _read_sqlite_columns(self, cursor):
        """Columns (and primary keys) of every table in one query."""
        cursor.execute(
            'SELECT m.name, p.name, p."notnull", p.pk FROM sqlite_master AS m '
            "JOIN pragma_table_xinfo(m.name) AS p WHERE m.type = 'table' ORDER BY m.name, p.cid")
        for table, column, notnull, pk in cursor.fetchall():
            self._columns.setdefault(table, {})[column] = not notnull
            if pk:
                self._sqlite_primary.setdefault(table, []).append((pk, column))

    def _read_sqlite_constraints(self):
        """Primary keys, indexes, foreign keys and checks of every table in two queries."""
        tables = [n for n, sql in self._table_sql.items() if not sql.lstrip().upper().startswith("CREATE VIRTUAL")]
        constraints = {t: [] for t in tables}
        with self.connection.cursor() as cursor:
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


# Compiled when first used (SQLite's constraint read), not at import: start-up imports this module.
_NAMED_CHECK = r'CONSTRAINT\s+"?(\w+)"?\s+CHECK\s*\('
_CHECK = r"\bCHECK\s*\("
_QUOTED = r'"([^"]+)"'


def _sqlite_checks(sql, columns) -> list[dict]:
    """Check constraints of an SQLite table, read from its CREATE TABLE (names, and columns they use)."""
    found = []
    for match in re.finditer(_CHECK, sql, re.IGNORECASE):
        depth, end = 0, match.end() - 1
        for end in range(match.end() - 1, len(sql)):
            depth += {"(": 1, ")": -1}.get(sql[end], 0)
            if depth == 0:
                break
        body = sql[match.end():end]
        named = [m for m in re.finditer(_NAMED_CHECK, sql, re.IGNORECASE) if m.end() == match.end()]
        used = [c for c in dict.fromkeys(re.findall(_QUOTED, body)) if c in columns]
        found.append({"name": named[0].group(1) if named else "", "columns": used, "check": True,
                      "unique": False, "index": False, "primary_key": False, "foreign_key": None})
    return found
