"""manage.py dbrepair: fix what dbhealth finds, safely, and say what is left."""

from django.core.management.base import CommandError

from dbinit import errors, repair
from dbinit.commandbase import DbinitCommand
from dbinit.errors import DbinitError


class Command(DbinitCommand):
    help = (
        "Repair the database: run the health checks, plan a safe action for each fixable finding "
        "(re-seed missing rows; re-record lost migration records after verifying every table and "
        "column; recreate a missing table or column from the migration state; apply pending "
        "migrations; with --prune remove records of migrations missing on disk; release a stale "
        "initialisation lock), show the plan, carry it out unless --dry-run, check again and report "
        "what is still wrong with its manual steps. Never drops or truncates a table holding data and "
        "never deletes a user row; SQLite is backed up first (DBINIT_BACKUP_DIR), PostgreSQL changes "
        "run in a transaction. Exit status 0 only if the database ends healthy."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--dry-run", action="store_true", help="Show the plan and change nothing.")
        parser.add_argument("--prune", action="store_true",
                            help="Also remove records of applied migrations whose files no longer exist.")
        self.add_noinput_argument(parser, "Do not ask for confirmation.")

    def handle(self, *args, **options):
        self.json = options["format"] == "json"
        confirm = self.confirm if options["interactive"] and not self.json else None
        with self.quiet_logger(options["verbosity"]):
            try:
                result = repair.repair(options["database"], dry_run=options["dry_run"], prune=options["prune"],
                                       confirm=confirm)
            except DbinitError as exc:
                self.fail(exc)
        if self.json:
            self.write_json(result.as_dict())
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

    def confirm(self, result):
        self.render_plan(result)
        answer = input("Carry out these repairs? [y/N] ")
        self.plan_shown = True
        return answer.strip().lower() in ("y", "yes")

    def render_plan(self, result):
        if not result.actions:
            self.stdout.write("Nothing to repair automatically.")
            return
        self.stdout.write(self.style.MIGRATE_HEADING("Plan:"))
        for action in result.actions:
            self.stdout.write(f"  - [{action.finding}] {action.kind}: {action.description}")

    def render(self, result):
        if result.refused:
            self.stdout.write(self.style.ERROR(f"Refusing to repair: {result.refused.code} {result.refused.message}"))
            return
        if not getattr(self, "plan_shown", False):
            self.render_plan(result)
        if result.backup:
            self.stdout.write(f"Backup written to {result.backup}")
        if not result.dry_run:
            for action in result.actions:
                style = self.style.SUCCESS if action.status == "done" else self.style.ERROR
                self.stdout.write(style(f"  {action.status:<6}") + f" {action.kind}: {action.outcome}")
        if result.generated_password:
            self.stdout.write(self.style.WARNING(
                f"Generated a password for the re-created admin: {result.generated_password} (shown once)."))
        if result.manual:
            self.stdout.write(self.style.MIGRATE_HEADING("Left for a person (not safe to do automatically):"))
            for f in result.manual:
                self.stdout.write(f"  {f.id} {f.message}")
                self.stdout.write(f"    to fix: {f.hint}")
        if result.dry_run:
            self.stdout.write(self.style.NOTICE("Dry run: nothing was changed."))
        elif result.healthy:
            self.stdout.write(self.style.SUCCESS("The database is healthy."))
