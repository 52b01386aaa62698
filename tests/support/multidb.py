"""A multi-database project the tests own: ``default``, ``analytics`` and a read-only ``replica``.

Settings module ``tests.settings.multidb``; each alias is a :class:`ScratchDatabase` of the
run's engine. The replica is a copy of an initialised database; on PostgreSQL it is also
read-only at the server (``ALTER DATABASE ... SET default_transaction_read_only = on``), as a
read-only role would be. :meth:`MultiDatabase.streaming` makes ``replica`` the real thing:
``default`` as a streaming standby (tests/support/standby.py) serves it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .databases import ScratchDatabase
from .standby import Standby

SETTINGS = "tests.settings.multidb"


@dataclass
class MultiDatabase:
    default: ScratchDatabase
    analytics: ScratchDatabase
    replica: ScratchDatabase
    owns_replica: bool = True  # False: the replica is default on a standby (dropped with default)

    @classmethod
    def new(cls, engine: str, folder: Path) -> MultiDatabase:
        return cls(*(ScratchDatabase.new(engine, folder / alias) for alias in ("default", "analytics", "replica")))

    @classmethod
    def streaming(cls, template: MultiDatabase, standby: Standby, folder: Path) -> MultiDatabase:
        """Copies of ``template``'s default and analytics; ``replica`` is that default as ``standby``
        serves it (in recovery, streaming from the test server), once the standby has caught up."""
        default, analytics = (ScratchDatabase.new("postgresql", folder / alias) for alias in ("default", "analytics"))
        default.clone_from(template.default)
        analytics.clone_from(template.analytics)
        standby.catch_up()
        return cls(default, analytics, standby.view(default), owns_replica=False)

    def make_replica_of(self, source: ScratchDatabase):
        """The replica: a copy of ``source``, read-only at the server on PostgreSQL."""
        self.replica.clone_from(source)
        if self.replica.engine == "postgresql":
            self.replica._server_exec(f'ALTER DATABASE "{self.replica.name}" SET default_transaction_read_only = on')

    @property
    def env(self) -> dict:
        return {"DJANGO_SETTINGS_MODULE": SETTINGS, "DATABASE_URL": self.default.url,
                "ANALYTICS_DATABASE_URL": self.analytics.url, "REPLICA_DATABASE_URL": self.replica.url}

    def snapshot(self, db: ScratchDatabase) -> tuple:
        """What proves nothing was written: every table's row count and the migration records."""
        return db.row_counts(), db.applied_migrations()

    def drop(self):
        for db in (self.default, self.analytics, self.replica) if self.owns_replica else (self.default, self.analytics):
            db.drop()
