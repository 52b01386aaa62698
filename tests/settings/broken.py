"""Project settings plus tests.apps.brokenapp, whose migration 0002 fails (for the rollback tests)."""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.brokenapp"]  # noqa: F405
