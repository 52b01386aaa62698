"""Project settings plus tests.apps.checksumapp, its migrations loaded from a copy the test owns.

``CHECKSUMAPP_MIGRATIONS`` is the folder of that copy (a package, e.g.
``/tmp/.../checksumapp_migrations``): the test edits a migration file there after it was
applied, and the repository's file stays as it is.
"""

import os
import sys

from aisecretary.settings import *  # noqa: F403

INSTALLED_APPS = INSTALLED_APPS + ["tests.apps.checksumapp"]  # noqa: F405

_copy = os.environ.get("CHECKSUMAPP_MIGRATIONS")
if _copy:
    sys.path.insert(0, os.path.dirname(_copy))
    MIGRATION_MODULES = {"checksumapp": os.path.basename(_copy)}
