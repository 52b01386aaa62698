"""Project settings plus tests.driftapp, whose model changed without a migration."""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.driftapp"]  # noqa: F405
