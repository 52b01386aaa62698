"""The routers of the multi-database test project (tests/settings/multidb.py).

* :class:`AnalyticsRouter`: the analytics app lives on the ``analytics`` alias only, and
  nothing else does.
* :class:`ReplicaRouter`: reads of everything else go to ``replica`` (a read-only copy of
  ``default``), writes to ``default``; nothing is ever migrated on ``replica``.
"""

ANALYTICS_APP = "analytics"


class AnalyticsRouter:
    def db_for_read(self, model, **hints):
        return "analytics" if model._meta.app_label == ANALYTICS_APP else None

    def db_for_write(self, model, **hints):
        return "analytics" if model._meta.app_label == ANALYTICS_APP else None

    def allow_relation(self, obj1, obj2, **hints):
        return None

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == ANALYTICS_APP:
            return db == "analytics"
        if db == "analytics":
            return False
        return None


class ReplicaRouter:
    def db_for_read(self, model, **hints):
        return "replica"

    def db_for_write(self, model, **hints):
        return "default"

    def allow_relation(self, obj1, obj2, **hints):
        return True

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        return False if db == "replica" else None
