"""Project settings plus tests.apps.manyapp: about 230 migrations, a history of realistic length."""

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.manyapp"]  # noqa: F405
