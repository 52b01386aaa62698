"""manage.py initdb: take the database from any state to migrated, seeded and verified."""

import getpass
import sys

from django.conf import settings

from dbinit import errors, initializer, passwords, routing, seeding
from dbinit.commandbase import DbinitCommand
from dbinit.errors import DbinitError
from dbinit.results import FAILED, PLANNED, SKIPPED, WARNING

STATUS_WIDTH = 13


class Command(DbinitCommand):
    help = (
        "Initialise the database: validate the configuration, create the database if it is "
        "missing (SQLite file or PostgreSQL database), connect (waiting up to "
        "DBINIT_CONNECT_TIMEOUT), take the initialisation lock, apply pending migrations, seed "
        "the admin user (DBINIT_ADMIN_EMAIL / DBINIT_ADMIN_PASSWORD) and verify tables, columns "
        "and seed rows. Safe to run any number of times: a second run changes nothing. "
        "--plan shows what would run and changes nothing."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        self.add_noinput_argument(parser, "Never prompt (in production without DBINIT_ADMIN_PASSWORD, a "
                                          "password is generated instead of asked for; see --print-password).")
        self.add_no_seed_argument(parser)
        self.add_print_password_argument(parser)
        parser.add_argument("--plan", action="store_true",
                            help="Show what would be done (database creation, migrations, seed) and change nothing.")
        self.add_all_databases_argument(
            parser, "Initialise every writable alias of DATABASES, the one holding dbinit's and the seed's "
                    "tables first; read-only aliases (replicas) are listed and skipped. Stops at the first failure.")

    def handle(self, *args, **options):
        self.verbosity = options["verbosity"]
        self.json = options["format"] == "json"
        admin_password = initializer.UNSET
        if (options["seed"] and not options["plan"] and options["interactive"]
                and settings.AISECRETARY_ENV == "production" and not settings.DBINIT_ADMIN_PASSWORD
                and sys.stdin.isatty() and self.admin_to_create(options)):
            admin_password = self.ask_password()
        if options["all_databases"]:
            return self.handle_all(options, admin_password)
        with self.quiet_logger(self.verbosity):
            result = self.run_one(options["database"], options, admin_password)
        if self.json:
            self.write_json(self.result_dict(result, options))
        else:
            self.render_summary(result)
        if result.error:
            self.fail(result.error)

    def run_one(self, alias, options, admin_password):
        on_event = None if self.json else self.on_event
        if options["plan"]:
            from dbinit import planning  # the migration graph's machinery: only --plan needs it

            result = planning.plan(alias, seed=options["seed"], on_event=on_event)
        else:
            result = initializer.initialize(alias, seed=options["seed"], on_event=on_event,
                                            admin_password=admin_password)
        # A generated password goes to a 0600 file (or, with --print-password, the console) at once.
        self.password_message = self.password_file = None
        if result.generated_password:
            self.password_message = self.deliver_password(result.generated_password, settings.DBINIT_ADMIN_EMAIL,
                                                          options["print_password"])
        return result

    def result_dict(self, result, options) -> dict:
        data = result.as_dict(include_password=options["print_password"])
        if self.password_file:
            data["generated_admin_password_file"] = str(self.password_file)
        return data

    def handle_all(self, options, admin_password):
        """--all-databases: each writable alias in dependency order, replicas named and skipped."""
        writable = [a for a in routing.aliases() if routing.writable(a)]
        read_only = [a for a in routing.aliases() if a not in writable]
        results, documents = [], []
        for alias in routing.dependency_order(writable):
            if not self.json and self.verbosity >= 1:
                self.stdout.write(self.style.MIGRATE_HEADING(f"Database {alias}:"))
            self.migrate_header = False
            with self.quiet_logger(self.verbosity):
                result = self.run_one(alias, options, admin_password)
            results.append(result)
            documents.append(self.result_dict(result, options))
            if not self.json:
                self.render_summary(result)
            if result.error:
                break
        if not self.json and self.verbosity >= 1:
            for alias in read_only:
                reason = routing.configured_read_only_reason(alias)
                self.stdout.write(self.style.NOTICE(f"Database {alias}: skipped, read-only to dbinit ({reason})."))
        if self.json:
            self.write_json({"databases": documents,
                             "skipped": {a: routing.configured_read_only_reason(a) for a in read_only}})
        failed = next((r for r in results if r.error), None)
        if failed:
            self.fail(failed.error)

    def admin_to_create(self, options) -> bool:
        """Whether this run would create the admin: a password typed for an existing admin would be
        silently unused (the seed never changes an existing admin's password)."""
        aliases = [a for a in routing.aliases() if routing.writable(a)] if options["all_databases"] \
            else [options["database"]]
        return any(seeding.admin_would_be_created(a, settings.DBINIT_ADMIN_EMAIL) for a in aliases)

    def ask_password(self):
        try:
            return self._ask_password()
        except (EOFError, KeyboardInterrupt):  # Ctrl-D, Ctrl-C: as createsuperuser, no traceback
            self.stderr.write("")
            self.fail(DbinitError(errors.E071, command="initdb",
                                  expected="the admin's password twice, or Enter to generate one"))

    def _ask_password(self):
        while True:
            first = getpass.getpass(f"Password for the admin {settings.DBINIT_ADMIN_EMAIL} (empty: generate one): ")
            if not first:
                return None
            try:  # the same rules as DBINIT_ADMIN_PASSWORD: AUTH_PASSWORD_VALIDATORS, as createsuperuser
                passwords.refuse_weak(first, settings.DBINIT_ADMIN_EMAIL)
            except DbinitError as exc:
                self.stderr.write(f"{exc.code} {exc.message} Choose another.")
                continue
            if getpass.getpass("Again: ") == first:
                return first
            self.stderr.write("The passwords did not match.")

    # --- text rendering ---------------------------------------------------------------
    def on_event(self, event, *args):
        if self.verbosity < 1:
            return
        if event == "step_end":
            self.render_step(args[0])
        elif event == "migration_start":
            if not getattr(self, "migrate_header", False):
                self.migrate_header = True
                self.stdout.write("  migrate")
            self.stdout.write(f"      Applying {args[0]}...", ending="")
            self.stdout.flush()
        elif event == "migration_end":
            self.stdout.write(self.style.SUCCESS(" OK") + f" ({args[1]:.0f} ms)")

    def render_step(self, step):
        if step.status == FAILED:
            status = self.style.ERROR("FAILED")
        elif step.status == WARNING:
            status = self.style.WARNING("warning")
        elif step.status in (SKIPPED, PLANNED):
            status = self.style.NOTICE(step.status)
        else:
            status = self.style.SUCCESS("ok")
        name = "" if step.name == "migrate" and getattr(self, "migrate_header", False) else step.name
        label = f"  {name:<{STATUS_WIDTH}}" if name else f"  {'':<{STATUS_WIDTH}}"
        self.stdout.write(f"{label} {status} ({step.duration_ms:.0f} ms) {step.summary}".rstrip())
        if step.name == "migrate" and self.verbosity >= 1 and step.status == PLANNED:
            for label_ in step.detail.get("pending", []):
                self.stdout.write(f"      would apply {label_}")
        for warning in step.warnings:
            self.render_warning(warning)

    def render_summary(self, result):
        if self.verbosity < 1 and not self.password_message:
            return
        if self.password_message:
            self.stdout.write(self.style.WARNING(self.password_message))
        if result.error:
            return
        if result.plan_only:
            self.stdout.write(self.style.NOTICE(f"Plan only: nothing was changed ({result.duration_ms:.0f} ms)."))
        elif result.changed:
            self.stdout.write(self.style.SUCCESS(f"Database initialised in {result.duration_ms:.0f} ms."))
        else:
            self.stdout.write(self.style.SUCCESS(
                f"Database already initialised: nothing to do ({result.duration_ms:.0f} ms)."))
