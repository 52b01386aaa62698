"""Comparing two databases object by object and row by row (is a copied database the one migrate makes?)."""

from __future__ import annotations

# Columns whose values differ between two correct runs: times, salted hashes, where a run ran.
VOLATILE = {"applied", "applied_at", "updated_at", "date_joined", "password", "last_login", "created_at"}
# Per-run bookkeeping, not schema or data that migrate makes.
RUN_TABLES = {"dbinit_initializationrun"}


def objects(db) -> dict:
    """Every schema object with its definition, and every sequence's next value."""
    if db.engine == "sqlite":
        return {
            "objects": sorted(db.query("SELECT type, name, tbl_name, sql FROM sqlite_master")),
            "sequences": sorted(db.query("SELECT name, seq FROM sqlite_sequence")),
        }
    return {
        "columns": sorted(db.query(
            "SELECT table_name, column_name, data_type, is_nullable, column_default, is_identity "
            "FROM information_schema.columns WHERE table_schema = current_schema()")),
        "indexes": sorted(db.query("SELECT tablename, indexname, indexdef FROM pg_indexes "
                                   "WHERE schemaname = current_schema()")),
        "constraints": sorted(db.query(
            "SELECT c.conrelid::regclass::text, c.conname, c.contype, pg_get_constraintdef(c.oid) "
            "FROM pg_constraint c JOIN pg_namespace n ON n.oid = c.connamespace "
            "WHERE n.nspname = current_schema()")),
        # last_value is NULL until the first nextval(): together, the next value each sequence gives.
        "sequences": sorted(db.query("SELECT sequencename, last_value FROM pg_sequences "
                                     "WHERE schemaname = current_schema()"), key=repr),
    }


def rows(db) -> dict:
    """Every row of every table (volatile columns left out), in a stable order."""
    found = {}
    for table in sorted(db.tables() - RUN_TABLES):
        if table.startswith("sqlite_"):
            continue
        columns = sorted(db.columns(table) - VOLATILE)
        select = ", ".join(f'"{c}"' for c in columns)
        found[table] = sorted(map(tuple, db.query(f'SELECT {select} FROM "{table}"')), key=repr)
    return found
