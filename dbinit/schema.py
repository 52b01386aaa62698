"""Schema against models: which tables and columns are missing.

A constant number of queries whatever the size of the schema, and no row is
ever read: the table list comes from Django's introspection, the columns of
every table from one catalogue query (``information_schema`` on PostgreSQL,
``pragma_table_info`` on SQLite).
"""

from __future__ import annotations

from dataclasses import dataclass, field

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


def columns_by_table(connection) -> dict[str, set[str]]:
    """Every table of the current schema with its column names, in one query."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.table_name, c.column_name FROM information_schema.columns c "
                "JOIN information_schema.tables t ON t.table_schema = c.table_schema "
                "AND t.table_name = c.table_name "
                "WHERE c.table_schema = current_schema() AND t.table_type = 'BASE TABLE'"
            )
            rows = cursor.fetchall()
        elif connection.vendor == "sqlite":
            cursor.execute(
                "SELECT m.name, p.name FROM sqlite_master AS m JOIN pragma_table_info(m.name) AS p "
                "WHERE m.type = 'table'"
            )
            rows = cursor.fetchall()
        else:  # other backends: Django's introspection, one query per table
            rows = []
            for table in connection.introspection.table_names(cursor):
                rows += [(table, c.name) for c in connection.introspection.get_table_description(cursor, table)]
    tables: dict[str, set[str]] = {}
    for table, column in rows:
        tables.setdefault(table, set()).add(column)
    return tables


def compare(connection, models, existing: dict[str, set[str]] | None = None) -> SchemaReport:
    existing = columns_by_table(connection) if existing is None else existing
    report = SchemaReport()
    seen = set()
    for model in models:
        table = model._meta.db_table
        if table in seen:
            continue
        seen.add(table)
        report.tables_expected += 1
        if table not in existing:
            report.missing_tables.append(table)
            continue
        columns = existing[table]
        for f in model._meta.local_concrete_fields:
            if f.column and f.column not in columns:
                report.missing_columns.append(f"{table}.{f.column}")
    return report


def verify(connection) -> SchemaReport:
    """Compare every installed model with the live database."""
    return compare(connection, expected_models(connection))
