"""A multi-database project the tests own: ``default``, ``analytics`` and a read-only ``replica``.

Settings module ``tests.settings.multidb``; each alias is a :class:`ScratchDatabase` of the
run's engine. The replica is a copy of an initialised database; on PostgreSQL it is also
read-only at the server (``ALTER DATABASE ... SET default_transaction_read_only = on``), as a
standby or a read-only role would be.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from .databases import ScratchDatabase

SETTINGS = "tests.settings.multidb"


@dataclass
class MultiDatabase:
    default: ScratchDatabase
    analytics: ScratchDatabase
    replica: ScratchDatabase

    @classmethod
    def new(cls, engine: str, folder: Path) -> MultiDatabase:
        return cls(*(ScratchDatabase.new(engine, folder / alias) for alias in ("default", "analytics", "replica")))

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
        for db in (self.default, self.analytics, self.replica):
            db.drop()
