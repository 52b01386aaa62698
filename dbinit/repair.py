"""dbrepair's service: turn health findings into safe actions, carry them out, check again.

Rules every action follows: never drop or truncate a table holding data,
never delete a user row, never re-run a migration over live data. SQLite is
backed up (online backup API) before the first change; PostgreSQL changes
run in one transaction (transactional DDL), so a failed repair changes
nothing. What cannot be fixed safely is left alone and reported with its
manual steps.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from . import backup, health, seeding
from .errors import DbinitError

logger = logging.getLogger("dbinit")

# Findings no repair may touch: the file must be restored by a person.
UNTOUCHABLE = {"dbinit.E015", "dbinit.E050", "dbinit.E051"}
# Order matters: records first (so the state is right), then schema, then migrations, then rows.
ORDER = ["remove_duplicate_records", "prune_records", "record_lost_migrations", "recreate_tables", "recreate_columns",
         "apply_migrations", "reseed", "release_lock"]


@dataclass
class Action:
    kind: str
    finding: str  # the catalogue id it fixes
    description: str
    status: str = "planned"  # planned, done, failed, skipped
    outcome: str = ""

    def as_dict(self) -> dict:
        return {"action": self.kind, "fixes": self.finding, "description": self.description,
                "status": self.status, "outcome": self.outcome}


@dataclass
class RepairResult:
    before: health.HealthReport
    actions: list[Action] = field(default_factory=list)
    manual: list[health.Finding] = field(default_factory=list)  # left alone, with their steps
    after: health.HealthReport | None = None
    backup: Path | None = None
    dry_run: bool = False
    refused: DbinitError | None = None
    generated_password: str | None = None

    @property
    def remaining(self) -> list[health.Finding]:
        report = self.after or self.before
        return [f for f in report.findings if f.level_number >= 40 or (f.level_number >= 30 and f.fixable)]

    @property
    def healthy(self) -> bool:
        return self.refused is None and not self.remaining

    def as_dict(self) -> dict:
        return {
            "status": "ok" if self.healthy else "error",
            "dry_run": self.dry_run,
            "database": self.before.database,
            "backup": str(self.backup) if self.backup else None,
            "refused": self.refused.as_dict() if self.refused else None,
            "actions": [a.as_dict() for a in self.actions],
            "manual": [f.as_dict() for f in self.manual],
            "remaining": [f.as_dict() for f in self.remaining] if not self.dry_run else None,
            "before": self.before.as_dict(),
            "after": self.after.as_dict() if self.after else None,
        }


def plan(report: health.HealthReport, *, prune=False) -> tuple[list[Action], list[health.Finding], DbinitError | None]:
    """Actions for the fixable findings, the findings left to a person, and a refusal if any."""
    for f in report.findings:
        if f.id in UNTOUCHABLE:
            return [], [f], DbinitError(f.id.split(".")[1], **f.context)
    actions: dict[str, Action] = {}
    manual = []

    def add(kind, finding, description):
        """One action per kind; it lists every finding it fixes."""
        action = actions.setdefault(kind, Action(kind, finding.id, description))
        fixes = set(action.finding.split(", ")) | {finding.id}
        action.finding = ", ".join(sorted(fixes))

    for f in report.problems("warning"):
        if f.id == "dbinit.W021" and prune:
            add("prune_records", f, f"remove records of migrations missing on disk: {', '.join(f.context['records'])}")
        elif f.id in ("dbinit.W024", "dbinit.E021"):
            # Inconsistent history is usually lost records too: the strict verification decides.
            add("record_lost_migrations", f, "verify each table and column against the migration state, then "
                "record the matching migrations as applied (none is run)")
        elif f.id == "dbinit.E030":
            add("recreate_tables", f, f"recreate from the migration state: {', '.join(f.context['tables'])}")
        elif f.id == "dbinit.E031":
            add("recreate_columns", f, f"add back from the migration state: {', '.join(f.context['columns'])}")
        elif f.id == "dbinit.W020":
            add("apply_migrations", f, f"apply {len(f.context['pending'])} pending migration(s)")
        elif f.id in ("dbinit.E040", "dbinit.E041", "dbinit.W040"):
            add("reseed", f, "re-seed missing rows with initdb's seeding")
        elif f.id == "dbinit.E061":
            add("remove_duplicate_records", f, "delete the later copies of migration records, keeping the earliest "
                f"of each: {', '.join(f.context['records'])}")
        elif f.id == "dbinit.W060":
            add("release_lock", f, f"release the expired lease of {f.context['holder']['step']} on "
                f"{f.context['holder']['host']} (pid {f.context['holder']['pid']})")
        else:
            manual.append(f)
    # Lost records and pending migrations are two views of one problem: recording comes first,
    # and whatever is still pending afterwards is applied.
    ordered = [actions[k] for k in ORDER if k in actions]
    return ordered, manual, None


def repair(alias="default", *, dry_run=False, prune=False, confirm=None) -> RepairResult:
    """Check, plan, (unless ``dry_run``) repair, and check again."""
    before = health.run(alias, connect_timeout=settings.DBINIT_CONNECT_TIMEOUT)
    actions, manual, refused = plan(before, prune=prune)
    result = RepairResult(before=before, actions=actions, manual=manual, dry_run=dry_run, refused=refused)
    if refused or dry_run or not actions:
        return result
    if confirm is not None and not confirm(result):
        raise DbinitError("E071", command="dbrepair", expected="y")
    connection = connections[alias]
    if connection.vendor == "sqlite":
        result.backup = backup.backup_sqlite(connection, "repair")
    Repairer(connection, result).run()
    result.after = health.run(alias)
    # Manual findings are what is still there after the repair.
    _, result.manual, _ = plan(result.after, prune=prune)
    return result


class Repairer:
    def __init__(self, connection, result: RepairResult):
        self.connection = connection
        self.result = result

    # Records and schema first, then pending migrations (each in its own transaction, as
    # migrate does), then rows: each phase is one transaction on PostgreSQL.
    PHASES = (("remove_duplicate_records", "prune_records", "record_lost_migrations", "recreate_tables", "recreate_columns"),
              ("apply_migrations",), ("reseed", "release_lock"))

    def run(self):
        for kinds in self.PHASES:
            actions = [a for a in self.result.actions if a.kind in kinds]
            if not actions:
                continue
            if self.connection.vendor == "postgresql" and kinds != ("apply_migrations",):
                self._atomic(actions)
            else:
                for action in actions:
                    self._do(action)

    def _atomic(self, actions):
        try:
            with transaction.atomic(using=self.connection.alias):
                for action in actions:
                    self._do(action, raise_errors=True)
        except (DatabaseError, DbinitError) as exc:
            for action in actions:
                if action.status == "done":
                    action.status, action.outcome = "failed", f"rolled back with the rest of its phase: {exc}"

    def _do(self, action, raise_errors=False):
        try:
            action.outcome = getattr(self, action.kind)() or "done"
            action.status = "done"
            logger.info("Repair %s: %s", action.kind, action.outcome)
        except (DatabaseError, DbinitError) as exc:
            from .configuration import scrub

            action.status, action.outcome = "failed", scrub(str(exc).strip().splitlines()[0])
            logger.warning("Repair %s failed: %s", action.kind, action.outcome)
            if raise_errors:
                raise

    # --- the actions -----------------------------------------------------------------
    def _executor(self):
        from django.db.migrations.executor import MigrationExecutor

        return MigrationExecutor(self.connection)

    # --- deployment topologies (issue 12): duplicated history ------------------------
    def remove_duplicate_records(self):
        from .migrations_state import remove_duplicate_records

        removed = remove_duplicate_records(self.connection)
        return f"kept the earliest record of {', '.join(removed)}" if removed else "no duplicates left"

    def prune_records(self):
        from django.db.migrations.recorder import MigrationRecorder

        from .migrations_state import records_missing_on_disk

        gone = records_missing_on_disk(self._executor().loader)
        recorder = MigrationRecorder(self.connection)
        for app, name in gone:
            recorder.record_unapplied(app, name)
        return f"removed {len(gone)} record(s): " + ", ".join(f"{a}.{n}" for a, n in gone)

    def record_lost_migrations(self):
        from .schema_repair import record_verified_migrations

        recorded, refused = record_verified_migrations(self.connection)
        text = f"recorded {len(recorded)}: {', '.join(recorded)}" if recorded else "recorded none"
        if refused:
            text += f"; not recorded (schema does not match): {', '.join(refused)}"
        return text

    def recreate_tables(self):
        from .schema_repair import recreate_missing_tables

        created = recreate_missing_tables(self.connection)
        return f"created {', '.join(created)}" if created else "nothing was missing"

    def recreate_columns(self):
        from .schema_repair import recreate_missing_columns

        added = recreate_missing_columns(self.connection)
        return f"added {', '.join(added)}" if added else "nothing was missing"

    def apply_migrations(self):
        from .migrations_state import apply, check_history, forward_plan, lost_records
        from .schema import columns_by_table

        executor = self._executor()
        # Never run a migration over tables that are already there, nor on a broken history.
        check_history(executor, step="repair")
        pending = forward_plan(executor)
        if not pending:
            return "nothing pending"
        lost = lost_records([m for m, _ in pending], columns_by_table(self.connection))
        if lost:
            raise DbinitError("W024", count=len(lost), migrations=", ".join(lost))
        report = apply(executor, pending, step="repair")
        return f"applied {len(report.applied)}: {', '.join(report.applied)}"

    def reseed(self):
        report = seeding.seed(
            self.connection.alias, admin_email=settings.DBINIT_ADMIN_EMAIL,
            admin_password=settings.DBINIT_ADMIN_PASSWORD, environment=settings.AISECRETARY_ENV,
        )
        if report.generated_password:
            self.result.generated_password = report.generated_password
        return f"created {', '.join(report.created)}" if report.created else "nothing was missing"

    def release_lock(self):
        from .locking import release_expired_lease

        holder = release_expired_lease(self.connection)
        if holder is None:
            return "the lock was free or is held by a live process (left alone)"
        return f"released the expired lease of {holder.describe()}"
