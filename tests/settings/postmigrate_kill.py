"""Project settings plus tests.apps.postmigratekill: initdb dies inside post-migrate when POSTMIGRATE_KILL=1."""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.postmigratekill"]  # noqa: F405
