"""manage.py resetdb: start the database afresh, after a backup, where that is allowed."""

from django.conf import settings

from dbinit import errors, reset, routing
from dbinit.commandbase import DbinitCommand
from dbinit.configuration import validate_configuration
from dbinit.errors import DbinitError


class Command(DbinitCommand):
    help = (
        "Drop everything and run initdb again. SQLite: the file is moved into the backup folder "
        "(DBINIT_BACKUP_DIR, default backups/ beside it), never just deleted. PostgreSQL: pg_dump to "
        "the backup folder when the client is installed (--no-backup skips it), then DROP and CREATE "
        "DATABASE, or drop every table, view and sequence when the role may not create databases. "
        "Asks for confirmation unless --noinput; in production it refuses without --force and then "
        "asks for the database name to be typed (unless --noinput)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        self.add_noinput_argument(parser, "Do not ask for confirmation (production still needs --force).")
        parser.add_argument("--force", action="store_true", help="Required in production.")
        parser.add_argument("--no-backup", action="store_false", dest="backup",
                            help="Skip pg_dump (SQLite files are always moved, never deleted).")
        self.add_no_seed_argument(parser)

    def handle(self, *args, **options):
        alias = options["database"]
        # Refuse before anything is dropped: the re-initialisation would fail on the same problem.
        problems = validate_configuration(alias, seed=options["seed"])
        if problems:
            self.fail(problems[0])
        with self.quiet_logger(options["verbosity"]):
            try:
                routing.refuse_read_only(alias, "resetdb")  # a replica: refused before any prompt
            except DbinitError as exc:
                self.fail(exc)
        target = reset.describe(alias)
        name = settings.DATABASES[alias]["NAME"]
        production = settings.AISECRETARY_ENV == "production"
        if production and not options["force"]:
            self.fail(DbinitError(errors.E070, command="resetdb"))
        if options["interactive"]:
            if production:
                answer = input(f"This DESTROYS every row of {target} in PRODUCTION.\n"
                               f"Type the database name ({name}) to continue: ")
                if answer.strip() != str(name):
                    self.fail(DbinitError(errors.E071, command="resetdb", expected=f"type {name}"))
            else:
                answer = input(f"This will drop every table of {target} (after a backup). Type 'yes' to continue: ")
                if answer.strip().lower() != "yes":
                    self.fail(DbinitError(errors.E071, command="resetdb", expected="type yes"))
        with self.quiet_logger(options["verbosity"]):
            try:
                result = reset.reset(alias, backup=options["backup"], seed=options["seed"])
            except DbinitError as exc:
                self.fail(exc)
        if options["format"] == "json":
            self.write_json(result.as_dict())
        else:
            self.stdout.write(f"Reset {target}: {result.method}.")
            if result.backup:
                self.stdout.write(self.style.SUCCESS(f"Backup: {result.backup}"))
            if result.note:
                self.stdout.write(self.style.WARNING(result.note))
            init = result.init
            if init.generated_password:
                self.stdout.write(self.style.WARNING(f"Generated admin password (shown once): {init.generated_password}"))
            if init.ok:
                self.stdout.write(self.style.SUCCESS(f"Database initialised again in {init.duration_ms:.0f} ms."))
        if result.init.error:
            self.fail(result.init.error)
