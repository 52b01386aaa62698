"""dbrepair's service: turn health findings into safe actions, carry them out, check again.

Rules every action follows: never drop or truncate a table holding data,
never delete a user row, never re-run a migration over live data. SQLite is
backed up (online backup API) before the first change. Repairs are
independent: each action runs in its own transaction, and the schema actions
repair each object (a table, a column, an index, a constraint) in its own
transaction inside it (a savepoint on PostgreSQL), so one that fails is rolled
back alone and reported with its cause and manual steps while the others
stand. What cannot be fixed safely is left alone and reported with its manual
steps.

The catalogue is the registry: an entry that dbrepair can fix names its
action (``errors.E030.repair == "recreate_tables"``), and each action below
registers itself under that name with :func:`action`. To add a repair: name
it in the catalogue entry, write the action here, test it on a damaged
database. ``tests/test_catalogue.py`` fails when the two lists disagree.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.db import DatabaseError, connections, transaction

from . import backup, errors, fingerprint, health, routing, seeding
from . import environment as dbenv
from .database import error_text
from .errors import DbinitError

logger = logging.getLogger("dbinit")

# Warnings no action fixes that still leave the database unhealthy: lost records a person must vouch for.
UNHEALTHY_WARNINGS = {errors.W029.id}
# Findings no repair may touch: the file must be restored by a person, or the target is not the
# application's database at all (a PostgreSQL template, a name SQL would change).
UNTOUCHABLE = {errors.E015.id, errors.E050.id, errors.E051.id, errors.E089.id, errors.E082.id, errors.E090.id}

# Phases, in order: records and schema, then pending migrations (each in its own transaction, as
# migrate does), then rows and locks.
SCHEMA, MIGRATIONS, ROWS = "schema", "migrations", "rows"


@dataclass(frozen=True)
class RepairAction:
    """A registered repair: the function that carries it out and how it is planned."""

    kind: str
    function: Callable[[RepairContext], str]
    order: int  # within the plan: records first (so the state is right), then schema, migrations, rows
    phase: str
    describe: Callable[[list], str]  # the plan line, from the findings it fixes
    option: str | None = None  # a dbrepair option that must be given for it to be planned ("prune")


ACTIONS: dict[str, RepairAction] = {}


def action(kind, *, order, phase, describe, option=None):
    """Register the decorated function as the repair ``kind`` (the name catalogue entries use)."""

    def register(function):
        ACTIONS[kind] = RepairAction(kind, function, order, phase, describe, option)
        return function

    return register


@dataclass
class RepairContext:
    """What an action works on: the connection, and the result it may add to (a generated password)."""

    connection: object
    result: RepairResult


@dataclass
class Action:
    """A registered repair action: what it fixes, in which order and phase."""

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
    """What one dbrepair run did, action by action."""

    before: health.HealthReport
    actions: list[Action] = field(default_factory=list)
    manual: list[health.Finding] = field(default_factory=list)  # left alone, with their steps
    after: health.HealthReport | None = None
    backup: Path | None = None
    dry_run: bool = False
    refused: DbinitError | None = None
    generated_password: str | None = None
    failures: list[health.Finding] = field(default_factory=list)  # objects whose repair failed, with steps

    @property
    def remaining(self) -> list[health.Finding]:
        report = self.after or self.before
        return [f for f in report.findings
                if f.level_number >= 40 or (f.level_number >= 30 and (f.fixable or f.id in UNHEALTHY_WARNINGS))]

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
            return [], [f], DbinitError(f.id, **f.context)
    options = {"prune": prune}
    fixes: dict[str, list[health.Finding]] = {}
    manual = []
    for f in report.problems("warning"):
        spec = ACTIONS.get(f.repair) if f.repair else None
        if spec is None or (spec.option and not options[spec.option]):
            manual.append(f)
        else:
            fixes.setdefault(spec.kind, []).append(f)
    # One action per kind, listing every finding it fixes. Lost records and pending migrations
    # are two views of one problem: recording comes first, and whatever is still pending
    # afterwards is applied.
    actions = [Action(kind, ", ".join(sorted({f.id for f in fixes[kind]})), ACTIONS[kind].describe(fixes[kind]))
               for kind in sorted(fixes, key=lambda k: ACTIONS[k].order)]
    return actions, manual, None


def repair(alias="default", *, dry_run=False, prune=False, confirm=None, record=()) -> RepairResult:
    """Check, plan, (unless ``dry_run``) repair, and check again.

    ``confirm(actions)``: asked before the planned actions are carried out (None: not asked).

    ``record``: migrations (``APP.NAME``) a person checked and wants recorded as applied
    before anything else (lost records whose effect dbinit cannot see, W029).
    """
    _checkpoint_sqlite(alias)
    # A replica is checked like any database, and never written (the server is asked once).
    read_only = routing.read_only_reason(alias) if alias in settings.DATABASES else None
    taken = None
    if record and not dry_run and not read_only:
        from .verification import checked_migrations, label, record_checked

        keys = checked_migrations(connections[alias], record)  # E035 before anything is written
        # The records are written before the check that plans the rest: asked for on their own.
        _confirm(confirm, [Action("record_checked_migrations", errors.W029.id,
                                  f"record {', '.join(label(k) for k in keys)} as applied "
                                  "(you checked the effect; nothing runs)")])
        taken = _backup(connections[alias])  # every write comes after the backup
        record_checked(connections[alias], keys)
    before = health.run(alias, connect_timeout=settings.DBINIT_CONNECT_TIMEOUT, hash_passwords=True)
    actions, manual, refused = plan(before, prune=prune)
    if read_only:
        actions, refused = [], routing.refusal(alias, "dbrepair", read_only)
    result = RepairResult(before=before, actions=actions, manual=manual, dry_run=dry_run, refused=refused,
                          backup=taken)
    if refused or dry_run or not actions:
        return result
    _confirm(confirm, result.actions)
    connection = connections[alias]
    result.backup = result.backup or _backup(connection)
    carry_out(RepairContext(connection, result))
    result.after = health.run(alias, hash_passwords=True)
    # Left for a person: what no action fixes, and each object whose repair failed (its cause and steps).
    _, manual, _ = plan(result.after, prune=prune)
    result.manual = result.failures + manual
    if result.healthy:
        # The full check just verified the migration set (the repair's migrate made dbinit forget it).
        fingerprint.remember(connection)
    return result


def _confirm(confirm, actions: list[Action]) -> None:
    """Ask ``confirm(actions)`` (None: do not ask); E071 unless the answer is yes."""
    if confirm is not None and not confirm(actions):
        raise DbinitError(errors.E071, command="dbrepair", expected="y")


def _backup(connection) -> Path | None:
    """A copy of an SQLite database before dbrepair's first write (PostgreSQL: none is taken here)."""
    return backup.backup_sqlite(connection, "repair") if connection.vendor == "sqlite" else None


def _checkpoint_sqlite(alias):
    """Fold an SQLite ``-wal`` file into the database, so the integrity check and the backup
    read one file in one state (a WAL that cannot be folded is left to quick_check to judge)."""
    from . import database as db
    from .sqlite import checkpoint

    if alias not in settings.DATABASES or connections[alias].vendor != "sqlite":
        return
    path = db.sqlite_path(connections[alias].settings_dict)
    if path is None or not path.exists() or routing.configured_read_only_reason(alias):
        return
    try:
        db.check_sqlite_file(path, step="repair")
        busy, _, _ = checkpoint(path)
        if busy:
            logger.info("WAL of %s only partly checkpointed: another process is reading", path)
    except (DbinitError, OSError, sqlite3.Error) as exc:
        logger.info("No checkpoint before the checks (%s): quick_check decides", exc)


def carry_out(ctx: RepairContext):
    """Run the planned actions phase by phase, each action in its own transaction."""
    for phase in (SCHEMA, MIGRATIONS, ROWS):
        for planned in [a for a in ctx.result.actions if ACTIONS[a.kind].phase == phase]:
            _run(ctx, planned)
        if phase == SCHEMA:
            _record_again(ctx)


def _run(ctx, planned):
    if ctx.connection.vendor == "postgresql" and ACTIONS[planned.kind].phase != MIGRATIONS:
        _atomic(ctx, planned)
    else:
        # SQLite's schema editor cannot run inside an outer transaction; the schema actions
        # open one per object themselves. Migrations open one per migration.
        _do(ctx, planned)


def _record_again(ctx):
    """Verify lost records once more after the schema repairs.

    A lost migration that later recorded ones depend on is judged against the state that
    includes it; when a schema repair restored what it was missing, it is verified now.
    """
    done = {a.kind for a in ctx.result.actions if a.status == "done"}
    recorded = next((a for a in ctx.result.actions if a.kind == "record_lost_migrations"), None)
    if recorded is None or not done & {"recreate_tables", "recreate_columns", "repair_nullability",
                                       "recreate_constraints"}:
        return
    again = Action("record_lost_migrations", recorded.finding, "verify again after the schema repairs")
    _run(ctx, again)
    if again.status == "done" and not again.outcome.startswith("recorded none"):
        recorded.outcome += f"; after the schema repairs: {again.outcome}"


def _atomic(ctx, planned):
    try:
        with transaction.atomic(using=ctx.connection.alias):
            _do(ctx, planned, raise_errors=True)
    except (DatabaseError, DbinitError):
        pass  # _do recorded the failure; the transaction undid this action alone


def _do(ctx, planned, raise_errors=False):
    try:
        planned.outcome = ACTIONS[planned.kind].function(ctx) or "done"
        planned.status = "done"
        logger.info("Repair %s: %s", planned.kind, planned.outcome)
    except (DatabaseError, DbinitError) as exc:
        planned.status, planned.outcome = "failed", error_text(exc)
        logger.warning("Repair %s failed: %s", planned.kind, planned.outcome)
        if raise_errors:
            raise


def _context_list(findings, key) -> list:
    return [item for f in findings for item in f.context.get(key, [])]


# --- the actions ---------------------------------------------------------------------
def _executor(connection):
    from django.db.migrations.executor import MigrationExecutor

    return MigrationExecutor(connection)


@action("prune_records", order=10, phase=SCHEMA, option="prune",
        describe=lambda fs: f"remove records of migrations missing on disk: {', '.join(_context_list(fs, 'records'))}")
def prune_records(ctx: RepairContext) -> str:
    from django.db.migrations.recorder import MigrationRecorder

    from .migrations_state import records_missing_on_disk

    gone = records_missing_on_disk(_executor(ctx.connection).loader)
    recorder = MigrationRecorder(ctx.connection)
    for app, name in gone:
        recorder.record_unapplied(app, name)
    return f"removed {len(gone)} record(s): " + ", ".join(f"{a}.{n}" for a, n in gone)


@action("record_lost_migrations", order=20, phase=SCHEMA,
        # Inconsistent history is usually lost records too: the verification decides.
        describe=lambda fs: "verify each pending migration's operations against the schema, then record "
        "the verified ones as applied (none is run)")
def record_lost_migrations(ctx: RepairContext) -> str:
    from .schema_repair import record_verified_migrations

    recorded, left = record_verified_migrations(ctx.connection)
    text = f"recorded {len(recorded)}: {', '.join(recorded)}" if recorded else "recorded none"
    if left:
        text += f"; not recorded (not verifiable or partly applied, see below): {', '.join(left)}"
    return text


def _outcomes(ctx: RepairContext, outcomes, verb) -> str:
    """Summarise per-object outcomes; each failure becomes a manual step; fail the action if all failed."""
    from .schema_repair import summary

    for outcome in outcomes:
        if not outcome.done:
            ctx.result.failures.append(health.Finding.problem("repair", outcome.error, item=outcome.item))
    if outcomes and not any(o.done for o in outcomes):
        raise outcomes[0].error  # nothing done: the action failed, with the first cause (all are listed)
    return summary(outcomes, verb)


@action("recreate_tables", order=30, phase=SCHEMA,
        describe=lambda fs: f"recreate from the migration state: {', '.join(_context_list(fs, 'tables'))}")
def recreate_tables(ctx: RepairContext) -> str:
    from .schema_repair import recreate_missing_tables

    return _outcomes(ctx, recreate_missing_tables(ctx.connection), "created")


@action("recreate_columns", order=40, phase=SCHEMA,
        describe=lambda fs: f"add back from the migration state: {', '.join(_context_list(fs, 'columns'))}")
def recreate_columns(ctx: RepairContext) -> str:
    from .schema_repair import recreate_missing_columns

    return _outcomes(ctx, recreate_missing_columns(ctx.connection), "added")


@action("repair_nullability", order=42, phase=SCHEMA,
        describe=lambda fs: "set NULL / NOT NULL as the migration state says, each alone (NOT NULL only "
        "where no row holds NULL): " + ", ".join(_context_list(fs, "columns")))
def repair_nullability(ctx: RepairContext) -> str:
    from .schema_repair import repair_nullability

    return _outcomes(ctx, repair_nullability(ctx.connection), "changed")


@action("recreate_constraints", order=45, phase=SCHEMA,
        describe=lambda fs: "recreate from the migration state, each alone: " + ", ".join(
            _context_list(fs, "indexes") + _context_list(fs, "constraints") + _context_list(fs, "foreign_keys")))
def recreate_constraints(ctx: RepairContext) -> str:
    from .schema_repair import recreate_missing_constraints

    return _outcomes(ctx, recreate_missing_constraints(ctx.connection), "created")


@action("apply_migrations", order=50, phase=MIGRATIONS,
        describe=lambda fs: f"apply {len(_context_list(fs, 'pending'))} pending migration(s)")
def apply_migrations(ctx: RepairContext) -> str:
    from .migrations_state import apply, check_history, forward_plan
    from .verification import refuse_blind_apply

    executor = _executor(ctx.connection)
    # Never run a migration over objects that are already there, nor on a broken history.
    check_history(executor, step="repair")
    pending = forward_plan(executor)
    if not pending:
        return "nothing pending"
    refuse_blind_apply(executor, [m for m, backwards in pending if not backwards], step="repair")
    report = apply(executor, pending, step="repair")
    return f"applied {len(report.applied)}: {', '.join(report.applied)}"


@action("reseed", order=60, phase=ROWS, describe=lambda fs: "re-seed missing rows with initdb's seeding")
def reseed(ctx: RepairContext) -> str:
    report = seeding.seed(
        ctx.connection.alias, admin_email=settings.DBINIT_ADMIN_EMAIL,
        admin_password=settings.DBINIT_ADMIN_PASSWORD,
        environment=dbenv.effective(ctx.connection.alias),  # a production record keeps its rules
    )
    if report.generated_password:
        ctx.result.generated_password = report.generated_password
    return f"created {', '.join(report.created)}" if report.created else "nothing was missing"


@action("release_lock", order=70, phase=ROWS,
        describe=lambda fs: "release the expired lease of {step} on {host} (pid {pid})".format(**fs[0].context["holder"]))
def release_lock(ctx: RepairContext) -> str:
    from .locking import release_expired_lease

    holder = release_expired_lease(ctx.connection)
    if holder is None:
        return "the lock was free or is held by a live process (left alone)"
    return f"released the expired lease of {holder.describe()}"


# --- deployment topologies (issue 12): duplicated history ---------------------------------
@action("remove_duplicate_records", order=5, phase=SCHEMA,
        describe=lambda fs: "delete the later copies of migration records, keeping the earliest of each: "
        + ", ".join(_context_list(fs, "records")))
def remove_duplicate_records(ctx: RepairContext) -> str:
    from .migrations_state import remove_duplicate_records

    removed = remove_duplicate_records(ctx.connection)
    return f"kept the earliest record of {', '.join(removed)}" if removed else "no duplicates left"
