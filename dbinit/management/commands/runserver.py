"""runserver with dbinit's start-up step (DBINIT_STARTUP) before the first request."""

import os

from django.contrib.staticfiles.management.commands.runserver import Command as StaticfilesRunserverCommand
from django.utils.autoreload import DJANGO_AUTORELOAD_ENV

from dbinit import startup


class Command(StaticfilesRunserverCommand):
    help = (
        StaticfilesRunserverCommand.help
        + " Before serving, runs dbinit's start-up step per DBINIT_STARTUP (init: initialise the "
        "database; check: verify it; off) once in the serving process, not in the autoreloader's "
        "watcher; a critical failure stops with its dbinit id and a non-zero exit."
    )

    def handle(self, *args, **options):
        # With the autoreloader, this handle() runs twice: in the watcher (which only restarts
        # children) and in the child that serves. The child has RUN_MAIN set.
        serving = not options["use_reloader"] or os.environ.get(DJANGO_AUTORELOAD_ENV) == "true"
        if serving:
            startup.run_or_exit(server="runserver", exit_code=1)  # every alias of DBINIT_DATABASES
        super().handle(*args, **options)
