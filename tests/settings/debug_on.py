"""The project's settings with DEBUG forced on: production must refuse to start with them."""

from aisecretary.settings import *  # noqa: F403

DEBUG = True
