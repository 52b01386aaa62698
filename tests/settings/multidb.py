"""Project settings with three aliases: ``default``, ``analytics`` (tests.apps.analytics, routed
there alone) and ``replica`` (a read-only copy of ``default``: TEST MIRROR, reads routed there,
nothing migrated). The extra aliases' URLs come from ANALYTICS_DATABASE_URL and
REPLICA_DATABASE_URL (SQLite files, or PostgreSQL databases the tests own).

MULTIDB_REPLICA_UNDECLARED=1 drops the MIRROR and the replica router: only the server can then
say that ``replica`` is read-only (PostgreSQL's default_transaction_read_only)."""

from aisecretary.settings import *  # noqa: F403
from aisecretary.settings import (
    DATABASES,
    DBINIT_SQLITE_BUSY_TIMEOUT,
    DBINIT_SQLITE_SYNCHRONOUS,
    DBINIT_SQLITE_TRANSACTION_MODE,
    INSTALLED_APPS,
    env,
)
from dbinit import configuration as conf
from dbinit import sqlite

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.analytics"]

DATABASES = {
    **DATABASES,
    "analytics": conf.parse_database_url(env.str("ANALYTICS_DATABASE_URL")),
    "replica": conf.parse_database_url(env.str("REPLICA_DATABASE_URL")),
}
_declared = not env.bool("MULTIDB_REPLICA_UNDECLARED", default=False)
if _declared:
    DATABASES["replica"]["TEST"] = {"MIRROR": "default"}
sqlite.apply_connection_defaults(
    DATABASES, busy_timeout=DBINIT_SQLITE_BUSY_TIMEOUT, transaction_mode=DBINIT_SQLITE_TRANSACTION_MODE,
    synchronous=DBINIT_SQLITE_SYNCHRONOUS,
)
DATABASE_ROUTERS = ["tests.apps.analytics.routers.AnalyticsRouter"]
if _declared:
    DATABASE_ROUTERS.append("tests.apps.analytics.routers.ReplicaRouter")
