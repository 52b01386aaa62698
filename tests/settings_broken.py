"""Project settings plus tests.brokenapp, whose migration 0002 fails (for the rollback tests)."""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.brokenapp"]  # noqa: F405
