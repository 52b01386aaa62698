"""Run in a subprocess: import the WSGI application (DBINIT_STARTUP decides the start-up work), then
print as JSON how many migration modules that imported (the fast path imports none)."""

import json
import os
import re
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

import aisecretary.wsgi  # noqa: E402,F401

MIGRATION = re.compile(r"\.migrations\.\d{4}_\w+$")  # an app's migration, not django.db.migrations.*
loaded = sorted(name for name in sys.modules if MIGRATION.search(name))
print(json.dumps({"migration_modules": len(loaded)}))
