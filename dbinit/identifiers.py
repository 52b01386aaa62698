"""Names that go into SQL: quoted by the driver, or refused.

Django's ``quote_name`` wraps a name in double quotes without doubling the quotes inside
it, so a database named ``x"--`` became ``"x"--"`` and ``DROP DATABASE`` dropped ``x``.
Every database, schema or table name dbinit puts into SQL text goes through
:func:`quote`, which uses ``psycopg2.sql.Identifier``. Names PostgreSQL would silently
change (longer than 63 bytes: truncated, so the statement names another object) or that
carry control characters are refused with ``dbinit.E082``.
"""

from __future__ import annotations

from . import errors
from .errors import DbinitError

MAX_IDENTIFIER_BYTES = 63  # PostgreSQL's NAMEDATALEN - 1


def unsafe_reason(name: str) -> str | None:
    """Why ``name`` cannot be used as a PostgreSQL identifier, or None."""
    if not name:
        return "it is empty"
    if any(ord(ch) < 32 or ord(ch) == 127 for ch in name):
        return "it contains a control character"
    if len(name.encode("utf-8")) > MAX_IDENTIFIER_BYTES:
        return f"it is longer than {MAX_IDENTIFIER_BYTES} bytes, so PostgreSQL would truncate it to another name"
    return None


def unsafe_name_error(name: str, kind="database", step="configuration") -> DbinitError | None:
    """E082 for a name that cannot be used safely, else None."""
    reason = unsafe_reason(name)
    return DbinitError(errors.E082, step=step, kind=kind, name=ascii(name), reason=reason) if reason else None


def check(name: str, kind="database", step=None) -> str:
    """Return ``name`` if it is safe to use, else raise E082."""
    error = unsafe_name_error(name, kind, step)
    if error:
        raise error
    return name


def quote(cursor, name: str, kind="database") -> str:
    """``name`` as a quoted SQL identifier, escaped by psycopg2 for ``cursor``'s connection."""
    from psycopg2 import sql

    check(name, kind)
    raw = getattr(cursor, "cursor", cursor)  # Django's CursorWrapper around psycopg2's cursor
    return sql.Identifier(name).as_string(raw)
