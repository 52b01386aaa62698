"""Run in a subprocess: do what a worker or a command does, then print as JSON the SQL it sent and how
many migration modules it imported.

``python tests/probes/startup_queries.py wsgi`` imports the WSGI application (DBINIT_STARTUP decides
the start-up work); ``python tests/probes/startup_queries.py initdb --noinput`` runs a command. A
command that fails still gets its report, with its exit status as ``exit`` (0 when it succeeded).
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
exit_status = 0

if sys.argv[1:] == ["wsgi"]:
    import aisecretary.wsgi  # noqa: F401
else:
    import django
    from django.core.management import CommandError, call_command

    django.setup()
    try:
        call_command(*sys.argv[1:], stdout=io.StringIO())
    except CommandError as exc:  # the command's own failure: shown as manage.py would show it
        sys.stderr.write(f"{exc}\n")
        exit_status = exc.returncode

MIGRATION = re.compile(r"\.migrations\.\d{4}_\w+$")  # an app's migration, not django.db.migrations.*
print(json.dumps({"queries": statements, "exit": exit_status,
                  "migration_modules": sum(1 for name in sys.modules if MIGRATION.search(name))}))
