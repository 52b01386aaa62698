"""Loaded with ``-p tests.testenv`` before pytest-django sets Django up: select the testing environment."""

import os

os.environ.setdefault("AISECRETARY_ENV", "testing")
