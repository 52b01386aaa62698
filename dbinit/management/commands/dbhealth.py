"""manage.py dbhealth: what is wrong with the database, why, and the command that fixes it."""

from django.core.management.base import CommandError

from dbinit import errors, health, readiness, routing
from dbinit.commandbase import DbinitCommand
from dbinit.errors import DbinitError

FAIL_LEVELS = {"CRITICAL": "critical", "ERROR": "error", "WARNING": "warning", "INFO": "info", "DEBUG": "debug"}


class Command(DbinitCommand):
    help = (
        "Check the database's health: configuration, connectivity and server version, engine details "
        "(SQLite quick_check, journal mode, writable file; PostgreSQL encoding, CREATEDB), pending, "
        "missing, lost or edited migrations, model changes without a migration, tables and columns "
        "against the models, seed data, the last initdb run and the initialisation lock. One line per "
        "check with its dbinit id, and a hint under each problem. Exits non-zero when a finding is at "
        "or above --fail-level (default ERROR), as manage.py check does."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--fail-level", default="ERROR", choices=list(FAIL_LEVELS),
                            help="Findings at or above this level make the exit status non-zero (default ERROR).")
        parser.add_argument("--check", action="append", choices=list(health.CHECKS), dest="only",
                            help="Run only this check (repeatable).")
        self.add_all_databases_argument(
            parser, "Check every alias of DATABASES in dependency order (read-only aliases too, without "
                    "writing); one report per alias.")

        parser.add_argument("--wait", type=float, metavar="SECONDS",
                            help="Instead of the full report, wait up to SECONDS until the database is ready for "
                                 "this release (reachable, its migrations applied, reference rows seeded), with a "
                                 "line per attempt; exit 0 once ready, 1 (dbinit.E062) if it never was. For app "
                                 "containers that wait for another pod's initdb.")

    def handle(self, *args, **options):
        if options["wait"] is not None:
            return self.wait(options["database"], options["wait"], options["format"])
        aliases = routing.dependency_order(routing.aliases()) if options["all_databases"] else [options["database"]]
        fail_level = FAIL_LEVELS[options["fail_level"]]
        reports, failing = [], []
        for alias in aliases:
            with self.quiet_logger(options["verbosity"]):
                report = health.run(alias, only=options["only"], hash_passwords=True)
            reports.append(report)
            failing += report.problems(fail_level) if fail_level != "debug" else report.findings
            if options["format"] != "json":
                self.render(report, options["verbosity"])
        if options["format"] == "json":
            if options["all_databases"]:
                self.write_json({"status": max((r.status for r in reports), key=("ok", "warning", "error").index),
                                 "databases": [r.as_dict() for r in reports]})
            else:
                self.write_json(reports[0].as_dict())
        if failing:
            raise CommandError(
                f"dbhealth found {len(failing)} problem(s) at or above {options['fail_level']}: "
                + ", ".join(sorted({f.id for f in failing})),
                returncode=1,
            )

    def render(self, report, verbosity):
        db = report.database
        where = db["name"] if db["vendor"] == "sqlite" else f"{db['host'] or 'localhost'}:{db['port'] or 5432}/{db['name']}"
        self.stdout.write(self.style.MIGRATE_HEADING(f"Database health: {db['alias']} ({db['vendor']} {where})"))
        styles = {"ok": self.style.SUCCESS, "info": self.style.HTTP_INFO, "warning": self.style.WARNING,
                  "error": self.style.ERROR, "critical": self.style.ERROR}
        for f in report.findings:
            status = styles[f.status](f"{f.status.upper():<8}")
            self.stdout.write(f"  {status} {f.id:<12} {f.check:<14} {f.message}"
                              + (f" ({f.duration_ms:.0f} ms)" if verbosity >= 2 else ""))
            if f.level_number >= 30 and f.hint:
                self.stdout.write(f"  {'':<8} {'':<12} {'':<14} hint: {f.hint}")
        style = styles[report.status]
        self.stdout.write(style(f"Status: {report.status} ({len(report.findings)} results in {report.duration_ms:.0f} ms)"))

    def wait(self, alias, seconds, output_format):
        def attempt(number, result):
            if output_format == "json":
                return
            blocking = [p.error for p in result.problems if p.blocking]
            text = "ready" if result.ready else "not ready: " + "; ".join(f"{e.code} {e.message}" for e in blocking)
            self.stdout.write(f"attempt {number}: {text}")

        with self.quiet_logger(0):
            result = readiness.wait(alias, timeout=seconds, on_attempt=attempt)
        if output_format == "json":
            self.write_json(result.as_dict(details=True))
        else:
            for warning in result.warnings:
                self.render_warning(warning)
        if not result.ready:
            blocking = [p.error for p in result.problems if p.blocking]
            reason = "; ".join(f"{e.code} {e.message}" for e in blocking) or "not every check ran"
            self.fail(DbinitError(errors.E062, timeout=f"{seconds:g}", reason=reason.rstrip(".")))
