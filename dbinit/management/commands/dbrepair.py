"""manage.py dbrepair: fix what dbhealth finds, safely, and say what is left."""

from django.core.management.base import CommandError

from dbinit import environment, errors, repair
from dbinit.commandbase import DbinitCommand
from dbinit.errors import DbinitError


class Command(DbinitCommand):
    help = (
        "Repair the database: run the health checks, plan a safe action for each fixable finding "
        "(re-seed missing rows; record lost migration records after verifying each operation against "
        "the schema; recreate a missing table, column, index, unique/check constraint or foreign key "
        "from the migration state; give a column its NULL / NOT NULL (NOT NULL only where no row holds NULL); "
        "apply pending migrations; with --prune remove records of migrations "
        "missing on disk; release a stale initialisation lock), show the plan, carry it out unless "
        "--dry-run, check again and report what is still wrong with its manual steps. Each object is "
        "repaired in its own transaction: one that fails is rolled back alone. Never drops or "
        "truncates a table holding data, never deletes a user row, never invents values; SQLite is "
        "backed up first (DBINIT_BACKUP_DIR). Exit status 0 only if the database ends healthy."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Show the plan and change nothing.")
        parser.add_argument("--prune", action="store_true",
                            help="Also remove records of applied migrations whose files no longer exist.")
        parser.add_argument("--record", action="append", default=[], metavar="APP.NAME",
                            help="Record this pending migration as applied without running it, after you "
                                 "checked that its effect is in the database (a lost record dbinit cannot "
                                 "verify, dbinit.W029); repeatable.")
        self.add_noinput_argument(parser, "Do not ask for confirmation.")
        self.add_print_password_argument(parser)
        parser.add_argument("--force", action="store_true",
                            help="Repair a database that records production from another environment "
                                 "(the database name must then be typed at the prompt).")

    def handle(self, *args, **options):
        self.json = options["format"] == "json"
        if not options["dry_run"]:
            self.guard_environment(options)
        confirm = self.confirm if options["interactive"] and not self.json else None
        with self.quiet_logger(options["verbosity"]):
            try:
                result = repair.repair(options["database"], dry_run=options["dry_run"], prune=options["prune"],
                                       confirm=confirm, record=options["record"])
            except DbinitError as exc:
                self.fail(exc)
        self.password_message = None
        if result.generated_password:
            from django.conf import settings

            self.password_message = self.deliver_password(result.generated_password, settings.DBINIT_ADMIN_EMAIL,
                                                          options["print_password"])
        if self.json:
            data = result.as_dict()
            if getattr(self, "password_file", None):
                data["generated_admin_password_file"] = str(self.password_file)
            self.write_json(data)
        else:
            self.render(result)
        if result.refused:
            self.fail(result.refused)
        if not result.healthy:
            remaining = ", ".join(sorted({f.id for f in result.remaining}))
            if result.dry_run:
                raise CommandError(f"dry run: nothing was changed; {len(result.remaining)} problem(s) "
                                   f"would be addressed or remain: {remaining}", returncode=1)
            self.fail(DbinitError(errors.E073, remaining=remaining))

    def guard_environment(self, options):
        """A database that records production is repaired from elsewhere only with --force and its name."""
        from django.conf import settings

        alias = options["database"]
        if alias not in settings.DATABASES or not environment.protected(alias):
            return
        refusal = environment.refusal(alias, "dbrepair", force=options["force"])
        if refusal or not options["interactive"]:
            self.fail(refusal or DbinitError(errors.E085, command="dbrepair --noinput", recorded="production",
                                             current=settings.AISECRETARY_ENV))
        name = settings.DATABASES[alias]["NAME"]
        answer = self.answer(f"This database records PRODUCTION. Type the database name ({name}) to continue: ",
                             "dbrepair", f"type {name}")
        if answer.strip() != str(name):
            self.fail(DbinitError(errors.E071, command="dbrepair", expected=f"type {name}"))

    def confirm(self, actions):
        self.render_plan(actions)
        answer = self.answer("Carry out these repairs? [y/N] ", "dbrepair", "y")
        self.plan_shown = True
        return answer.strip().lower() in ("y", "yes")

    def render_plan(self, actions):
        if not actions:
            self.stdout.write("Nothing to repair automatically.")
            return
        self.stdout.write(self.style.MIGRATE_HEADING("Plan:"))
        for action in actions:
            self.stdout.write(f"  - [{action.finding}] {action.kind}: {action.description}")

    def render(self, result):
        if result.refused:
            self.stdout.write(self.style.ERROR(f"Refusing to repair: {result.refused.code} {result.refused.message}"))
            return
        if not getattr(self, "plan_shown", False):
            self.render_plan(result.actions)
        if result.backup:
            self.stdout.write(f"Backup written to {result.backup}")
        if not result.dry_run:
            for action in result.actions:
                style = self.style.SUCCESS if action.status == "done" else self.style.ERROR
                self.stdout.write(style(f"  {action.status:<6}") + f" {action.kind}: {action.outcome}")
        if self.password_message:
            self.stdout.write(self.style.WARNING(self.password_message))
        if result.manual:
            self.stdout.write(self.style.MIGRATE_HEADING("Left for a person (not safe to do automatically):"))
            for f in result.manual:
                self.stdout.write(f"  {f.id} {f.message}")
                self.stdout.write(f"    to fix: {f.hint}")
        if result.dry_run:
            self.stdout.write(self.style.NOTICE("Dry run: nothing was changed."))
        elif result.healthy:
            self.stdout.write(self.style.SUCCESS("The database is healthy."))
