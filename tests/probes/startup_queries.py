"""Run in a subprocess: do what a worker or a command does, then print as JSON the SQL it sent and how
many migration modules it imported.

``python tests/probes/startup_queries.py wsgi`` imports the WSGI application (DBINIT_STARTUP decides
the start-up work); ``python tests/probes/startup_queries.py initdb --noinput`` runs a command.
"""

import io
import json
import os
import re
import sys

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")

from django.db.backends import utils  # noqa: E402

statements = []
_execute = utils.CursorWrapper.execute


def execute(self, sql, params=None):
    statements.append(" ".join(str(sql).split()))
    return _execute(self, sql, params)


utils.CursorWrapper.execute = execute

if sys.argv[1:] == ["wsgi"]:
    import aisecretary.wsgi  # noqa: F401
else:
    import django
    from django.core.management import call_command

    django.setup()
    call_command(*sys.argv[1:], stdout=io.StringIO())

MIGRATION = re.compile(r"\.migrations\.\d{4}_\w+$")  # an app's migration, not django.db.migrations.*
print(json.dumps({"queries": statements,
                  "migration_modules": sum(1 for name in sys.modules if MIGRATION.search(name))}))
