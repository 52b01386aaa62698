"""Project settings plus tests.apps.driftapp, whose model changed without a migration."""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.driftapp"]  # noqa: F405
