"""Project settings plus tests.apps.checksumapp, which a database router keeps out of ``default``.

What a project with a second database does: the router says the app's models are not
migrated here, so dbinit must neither create nor expect their tables in ``default``.
"""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.checksumapp"]  # noqa: F405
DATABASE_ROUTERS = ["tests.settings.routed.ElsewhereRouter"]


class ElsewhereRouter:
    """checksumapp lives in another database: never migrated into ``default``."""

    def allow_migrate(self, db, app_label, model_name=None, **hints):
        if app_label == "checksumapp":
            return db != "default"
        return None
