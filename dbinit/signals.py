"""Signal receivers, connected by ``DbinitConfig.ready()`` (connecting does no I/O)."""

from django.db.backends.signals import connection_created
from django.db.models.signals import post_migrate


def record_migration_checksums(sender, using="default", plan=None, **kwargs):
    """After any migrate (plain ``migrate``, initdb, test databases), checksum what it applied."""
    from django.db import connections

    from .fingerprint import forget
    from .migrations_state import record_checksums

    applied = [f"{m.app_label}.{m.name}" for m, backwards in (plan or []) if not backwards]
    record_checksums(connections[using], applied)
    if plan:
        # The migration state moved (a plain migrate, or initdb before it stores the new one):
        # the fast path must not trust the last verification any more.
        forget(connections[using])


def connect(app_config):
    # sender=dbinit's config: post_migrate is sent once per app; this runs once per migrate.
    post_migrate.connect(record_migration_checksums, sender=app_config,
                         dispatch_uid="dbinit.record_migration_checksums")
    from .private import on_connection_created

    # Whoever creates an SQLite file (initdb, migrate, a server), it ends up 0600.
    connection_created.connect(on_connection_created, dispatch_uid="dbinit.private_sqlite_files")
