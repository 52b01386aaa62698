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
    ("django.db.migrations.loader.MigrationLoader", "load_disk"),
    ("django.db.backends.base.schema.BaseDatabaseSchemaEditor", "_create_index_sql"),
    ("django.db.backends.base.schema.BaseDatabaseSchemaEditor", "_create_unique_sql"),
    ("django.db.backends.base.schema.BaseDatabaseSchemaEditor", "_create_check_sql"),
    ("django.db.backends.base.schema.BaseDatabaseSchemaEditor", "_create_index_name"),
    ("django.db.backends.base.schema.BaseDatabaseSchemaEditor", "_create_fk_sql"),
    ("django.db.backends.sqlite3.schema.DatabaseSchemaEditor", "_remake_table"),
    ("django.db.backends.postgresql.schema.DatabaseSchemaEditor", "_create_like_index_sql"),
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


# Migration files as read by the first loader of this process, keyed by the installed apps and
# MIGRATION_MODULES: a server's code does not change under it.
_DISK_MIGRATIONS: dict = {}


def executor_reading_files_once(connection):
    """A ``MigrationExecutor`` whose loader lists and imports the migration files once per process.

    ``MigrationLoader.load_disk`` (no public equivalent) re-imports every migration module each
    time; the graph and the applied records are still built for every call. The executor's
    ``__init__`` is Django 5.2's four assignments, with this loader instead of a fresh one.
    """
    from django.apps import apps
    from django.conf import settings
    from django.db.migrations.executor import MigrationExecutor
    from django.db.migrations.loader import MigrationLoader
    from django.db.migrations.recorder import MigrationRecorder

    class Loader(MigrationLoader):
        def load_disk(self):
            key = (tuple(a.label for a in apps.get_app_configs()), repr(getattr(settings, "MIGRATION_MODULES", {})))
            if key not in _DISK_MIGRATIONS:
                super().load_disk()
                _DISK_MIGRATIONS[key] = (dict(self.disk_migrations), set(self.unmigrated_apps),
                                         set(self.migrated_apps))
            disk, unmigrated, migrated = _DISK_MIGRATIONS[key]
            self.disk_migrations, self.unmigrated_apps, self.migrated_apps = dict(disk), set(unmigrated), set(migrated)

    executor = MigrationExecutor.__new__(MigrationExecutor)
    executor.connection = connection
    executor.loader = Loader(connection)
    executor.recorder = MigrationRecorder(connection)
    executor.progress_callback = None
    return executor
# --- re-creating one lost index or constraint (dbinit.schema_repair) ---------------------------------
# The schema editor's public methods create a constraint only as part of a field or a Meta
# option (add_field, alter_unique_together, ...), which would touch more than the one lost
# object. These are the statements those public methods build, for one object alone.


def create_field_index_sql(editor, model, fields):
    """CREATE INDEX as ``db_index=True`` makes it (its generated name included)."""
    return editor._create_index_sql(model, fields=fields)


def create_unique_sql(editor, model, fields):
    """The UNIQUE constraint ``unique=True`` / ``unique_together`` makes."""
    return editor._create_unique_sql(model, fields)


def create_field_check_sql(editor, model, field):
    """The CHECK constraint a field's type carries (``PositiveIntegerField``: ``>= 0``), named as Django names it."""
    name = editor._create_index_name(model._meta.db_table, [field.column], suffix="_check")
    return editor._create_check_sql(model, name, field.db_check(editor.connection))


def create_fk_sql(editor, model, field):
    """The FOREIGN KEY constraint ``add_field`` makes for ``field``."""
    return editor._create_fk_sql(model, field, "_fk_%(to_table)s_%(to_column)s")


def create_like_index_sql(editor, model, field):
    """PostgreSQL: the second index Django adds to an indexed or unique varchar/text column, with
    ``varchar_pattern_ops``/``text_pattern_ops`` for LIKE (the ``_like`` index); None when it adds none.

    Django decides this per field (its type, array or not, a non-deterministic collation); asking
    it keeps dbinit from restating those rules. Other engines add no such index.
    """
    if editor.connection.vendor != "postgresql":
        return None
    return editor._create_like_index_sql(model, field)


def remake_table(editor, model):
    """SQLite: rebuild ``model``'s table from the model, as its ``add_constraint`` does.

    SQLite keeps unique, check and foreign-key constraints in CREATE TABLE; the only way
    to add one is Django's table rebuild (copy, drop, rename), with every row kept.
    """
    editor._remake_table(model)
