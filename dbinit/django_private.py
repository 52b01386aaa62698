"""Every private Django name dbinit uses, in one place.

Checked against Django 5.2 (5.2.19). Each is used because Django's public API
has no equivalent and re-implementing it would copy Django's logic; each
wrapper says why. ``tests/test_django_private.py`` fails loudly when an
upgrade removes or renames one of them: check the new Django's code, then
update the wrapper here (and only here).
"""

from __future__ import annotations

# The names this module relies on, for the upgrade test: (object path, attribute).
NAMES = (
    ("django.db.migrations.executor.MigrationExecutor", "_create_project_state"),
    ("django.db.backends.base.base.BaseDatabaseWrapper", "_nodb_cursor"),
    ("django.db.backends.base.schema.BaseDatabaseSchemaEditor", "_model_indexes_sql"),
)
# Attributes of a connection that an atomic block maintains (django.db.transaction.Atomic).
ATOMIC_STATE = ("in_atomic_block", "needs_rollback", "savepoint_ids", "atomic_blocks", "commit_on_exit")


def applied_project_state(executor):
    """The project state the recorded migrations describe, built as ``migrate`` builds it.

    ``migrate`` itself calls ``MigrationExecutor._create_project_state``; the public
    ``loader.project_state()`` cannot leave out unapplied nodes of a partly migrated app.
    """
    return executor._create_project_state(with_applied_migrations=True)


def maintenance_cursor(connection):
    """A cursor on the server's maintenance database (PostgreSQL ``postgres``, else the first reachable).

    Django's test runner creates databases this way (``_nodb_cursor``), with its fallback
    when the ``postgres`` database is not reachable.
    """
    return connection._nodb_cursor()


def model_indexes_sql(editor, model) -> list:
    """The index statements ``create_model`` defers for ``model`` (to create a table without its M2M tables)."""
    return editor._model_indexes_sql(model)


def discard_broken_transaction(connection):
    """Roll back what a failed migration left open, so the connection is usable again.

    The executor runs each migration in an atomic block; when the SQLite schema editor
    raises from its own ``__exit__`` the block is never closed and the connection keeps
    the atomic state of a block that no longer exists. Resetting that state (the
    attributes ``Atomic`` maintains) and closing the connection discards the uncommitted
    transaction, the migration's changes, in every case.
    """
    if connection.in_atomic_block:
        connection.needs_rollback = False
        connection.in_atomic_block = False
        connection.savepoint_ids = []
        connection.atomic_blocks = []
        connection.commit_on_exit = True
    connection.close()
