"""What every dbinit command shares: options, JSON/text output, errors without tracebacks."""

from __future__ import annotations

import json
import logging
from contextlib import contextmanager

from django.core.management.base import BaseCommand, CommandError
from django.db import DEFAULT_DB_ALIAS

from . import errors
from .errors import DbinitError


class DbinitCommand(BaseCommand):
    # The commands must work (and explain themselves) when the database is down or damaged,
    # so Django's system checks do not run first; dbhealth runs them on purpose.
    requires_system_checks = []
    requires_migrations_checks = False

    def add_arguments(self, parser):
        parser.add_argument("--database", default=DEFAULT_DB_ALIAS,
                            help='The database to work on. Defaults to the "default" database.')
        parser.add_argument("--format", choices=["text", "json"], default="text",
                            help="Output as readable text (default) or as one JSON document.")

    def execute(self, *args, **options):
        """Run the command with its PostgreSQL connections named ``dbinit@HOST:PID/COMMAND``."""
        from django.db import connections

        from .database import application_name

        alias = options.get("database") or DEFAULT_DB_ALIAS
        if alias not in connections.settings:
            return super().execute(*args, **options)
        with application_name(alias, self.__module__.rsplit(".", 1)[-1]):
            return super().execute(*args, **options)

    @staticmethod
    def add_all_databases_argument(parser, help):
        parser.add_argument("--all-databases", action="store_true", help=help)

    @staticmethod
    def add_noinput_argument(parser, help):
        parser.add_argument("--noinput", "--no-input", action="store_false", dest="interactive", help=help)

    @staticmethod
    def add_no_seed_argument(parser, help="Do not seed the admin user (reference data comes with the migrations)."):
        parser.add_argument("--no-seed", action="store_false", dest="seed", help=help)

    @staticmethod
    def add_print_password_argument(parser):
        parser.add_argument("--print-password", action="store_true",
                            help="Print a generated admin password on the console instead of writing it to a new "
                                 "0600 file (DBINIT_ADMIN_PASSWORD_FILE, default var/admin-password-STAMP.txt).")

    def deliver_password(self, password: str, email: str, print_it: bool) -> str:
        """Hand a generated admin password over: a 0600 file (the line names its path), or the console.

        Consoles of release steps end up in CI logs and journald; a file only its owner reads does not.
        """
        from .private import write_password_file

        if print_it:
            return (f"Generated a password for the admin {email}: {password}\nIt is shown this once and not "
                    "stored anywhere else; change it after logging in (python manage.py changepassword).")
        try:
            path = write_password_file(password, email)
        except DbinitError as exc:  # E088: the admin exists; its password must be set by hand
            self.fail(exc)
        self.password_file = path
        return (f"Generated a password for the admin {email}; written to {path} (mode 0600, readable only by "
                "this user). Read it, keep it in a password manager and delete the file.")

    def write_json(self, data):
        self.stdout.write(json.dumps(data, indent=2, default=str))

    def answer(self, prompt: str, command: str, expected: str) -> str:
        """The person's answer to ``prompt``; a closed stdin or Ctrl-C is "not confirmed" (E071)."""
        try:
            return input(prompt)
        except (EOFError, KeyboardInterrupt):
            self.stdout.write("")
            self.fail(DbinitError(errors.E071, command=command, expected=expected))

    def fail(self, error: DbinitError, returncode=1):
        """Raise CommandError carrying the rendered catalogue entry (Django prints it, no traceback)."""
        raise CommandError(error.render().rstrip("\n"), returncode=returncode)

    def render_warning(self, warning: DbinitError):
        self.stdout.write(self.style.WARNING(f"  {warning.code} {warning.message}"))
        self.stdout.write(f"    hint: {warning.hint}")

    @contextmanager
    def quiet_logger(self, verbosity):
        """The command renders progress itself; the dbinit log joins in at -v 2 and above."""
        logger = logging.getLogger("dbinit")
        previous = logger.level
        if verbosity < 2:
            logger.setLevel(max(previous, logging.WARNING))
        try:
            yield
        finally:
            logger.setLevel(previous)
