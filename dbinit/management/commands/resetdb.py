"""manage.py resetdb: start the database afresh, after a backup, where that is allowed."""

from django.conf import settings

from dbinit import environment, errors, reset, routing
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
        parser.add_argument("--force", action="store_true",
                            help="Required in production, and for a database that records production "
                                 "(with the database name typed at the prompt).")
        parser.add_argument("--no-backup", action="store_false", dest="backup",
                            help="Skip pg_dump (SQLite files are always moved, never deleted).")
        self.add_no_seed_argument(parser)
        self.add_print_password_argument(parser)

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
        # The database's own record counts too: a development shell on the production URL.
        refusal = environment.refusal(alias, "resetdb", force=options["force"])
        if refusal:
            self.fail(refusal)
        recorded_production = environment.protected(alias)
        if recorded_production and not options["interactive"]:
            self.fail(DbinitError(errors.E085, command="resetdb --noinput", recorded="production",
                                  current=settings.AISECRETARY_ENV))
        if options["interactive"]:
            if production or recorded_production:
                answer = self.answer(f"This DESTROYS every row of {target} in PRODUCTION.\n"
                                     f"Type the database name ({name}) to continue: ", "resetdb", f"type {name}")
                if answer.strip() != str(name):
                    self.fail(DbinitError(errors.E071, command="resetdb", expected=f"type {name}"))
            else:
                answer = self.answer(f"This will drop every table of {target} (after a backup). Type 'yes' to "
                                     "continue: ", "resetdb", "type yes")
                if answer.strip().lower() != "yes":
                    self.fail(DbinitError(errors.E071, command="resetdb", expected="type yes"))
        with self.quiet_logger(options["verbosity"]):
            try:
                result = reset.reset(alias, backup=options["backup"], seed=options["seed"])
            except DbinitError as exc:
                self.fail(exc)
        password_message = None
        if result.init and result.init.generated_password:
            password_message = self.deliver_password(result.init.generated_password, settings.DBINIT_ADMIN_EMAIL,
                                                     options["print_password"])
        if options["format"] == "json":
            data = result.as_dict(include_password=options["print_password"])
            if getattr(self, "password_file", None):
                data["generated_admin_password_file"] = str(self.password_file)
            self.write_json(data)
        else:
            self.stdout.write(f"Reset {target}: {result.method}.")
            if result.backup:
                self.stdout.write(self.style.SUCCESS(f"Backup: {result.backup}"))
            if result.note:
                self.stdout.write(self.style.WARNING(result.note))
            init = result.init
            if password_message:
                self.stdout.write(self.style.WARNING(password_message))
            if init.ok:
                self.stdout.write(self.style.SUCCESS(f"Database initialised again in {init.duration_ms:.0f} ms."))
        if result.init.error:
            self.fail(result.init.error)
