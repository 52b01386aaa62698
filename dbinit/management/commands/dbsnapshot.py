"""manage.py dbsnapshot: write what migrate makes of an empty database as a committed SQL file."""

from django.db import DatabaseError, connections

from dbinit import snapshots, templates
from dbinit.commandbase import DbinitCommand
from dbinit.database import classify
from dbinit.errors import DbinitError


class Command(DbinitCommand):
    help = (
        "Write the committed snapshot for the database's engine: an empty scratch database is migrated "
        "and its content (SQLite: .dump SQL; PostgreSQL: pg_dump --inserts) written to "
        "DBINIT_SNAPSHOT_DIR/<engine>.sql with the migration-set fingerprint in its header. New databases "
        "load it instead of replaying every migration while the fingerprint matches. With --check, write "
        "nothing and exit 1 when the snapshot is missing or stale (for CI, like makemigrations --check)."
    )

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.add_argument("--check", action="store_true",
                            help="Write nothing; exit 1 (dbinit.W100) when the snapshot is missing or stale.")

    def handle(self, *args, **options):
        connection = connections[options["database"]]
        with self.quiet_logger(options["verbosity"]):
            try:
                if options["check"]:
                    problem = snapshots.stale(connection, strict=True)
                    if problem:
                        self.fail(problem)
                    path = snapshots.snapshot_path(connection.vendor)
                    self.render({"snapshot": str(path), "status": "current"}, options,
                                f"Snapshot {path} matches the migration files.")
                    return
                path, fp = templates.write_snapshot(connection)
            except DbinitError as exc:
                self.fail(exc)
            except DatabaseError as exc:
                self.fail(classify(exc, options["database"], "snapshot")[0])
        self.render({"snapshot": str(path), "status": "written", "fingerprint": fp.digest}, options,
                    f"Wrote {path} (fingerprint {fp.short}); commit it.")

    def render(self, data, options, text):
        if options["format"] == "json":
            self.write_json(data)
        else:
            self.stdout.write(self.style.SUCCESS(text))
