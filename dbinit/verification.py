"""Lost migration records: which pending migrations are already in the database.

A record in ``django_migrations`` can be lost (a restored table, a hand-made
fix, a truncated history) while the schema it describes is there. Applying
such a migration again fails ("already exists") or runs its data code twice;
recording it blindly hides real damage. So each pending migration is judged
from its operations, against the schema, never guessed:

* The migration states around every pending migration of an app are built
  as ``migrate`` builds them (one state, mutated in plan order), and each
  step's schema is reduced to facts (:mod:`dbinit.drift`): tables, columns,
  nullability, indexes, unique/check/foreign-key constraints. Any operation
  Django can express in the state is covered this way: CreateModel, AddField,
  AlterField (nullability, unique, index), AddIndex, AddConstraint,
  RenameField, RenameModel, AlterModelTable, their removals...
* The database is then compared with each step: the newest step it matches
  (on every fact that changes along the chain) says how many of the app's
  pending migrations were in fact applied. Those are *lost records*; the ones
  after are really pending, and applying them is safe (their objects are
  absent).
* A lost migration whose own effect cannot be seen in the schema (RunPython,
  RunSQL without state operations) is not recorded: the person checks that
  its code ran and runs ``manage.py migrate --fake APP NAME``. A migration
  with both schema operations and code runs in one transaction, so its
  verified schema vouches for its code.
* When no step matches, the app is *partly* migrated: the report says exactly
  which objects are missing (and which are there that should not be yet), and
  nothing is recorded or applied.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field

from django.db import models
from django.db.migrations.operations import RunPython, RunSQL, SeparateDatabaseAndState
from django.db.migrations.recorder import MigrationRecorder

from .drift import Expectation, describe, raw_sql_models
from .schema import Catalogue

logger = logging.getLogger("dbinit")


def label(key) -> str:
    return f"{key[0]}.{key[1]}"


@dataclass
class AppVerdict:
    """What the schema says about one app's pending migrations."""

    app: str
    pending: list[str]  # names, in plan order
    lost: list[str] = field(default_factory=list)  # applied in fact (verified prefix)
    recordable: list[str] = field(default_factory=list)  # lost, and safe to record now
    unverifiable: list[str] = field(default_factory=list)  # lost, their effect cannot be seen
    partial: bool = False
    missing: list[str] = field(default_factory=list)  # when partial: objects missing
    unexpected: list[str] = field(default_factory=list)  # when partial: objects there too early
    seen: set[str] = field(default_factory=set)  # migrations whose effect the schema shows

    @property
    def record_arguments(self) -> str:
        """``--record APP.NAME`` for each lost migration a person must vouch for."""
        return " ".join(f"--record {self.app}.{n}" for n in self.unverifiable)


@dataclass
class Verification:
    """What the schema says about the pending migrations: recordable, partial, unverifiable."""

    apps: dict[str, AppVerdict] = field(default_factory=dict)
    order: list[tuple] = field(default_factory=list)  # recordable keys, parents first

    def _labels(self, attribute) -> list[str]:
        return [f"{v.app}.{n}" for v in self.apps.values() for n in getattr(v, attribute)]

    @property
    def lost(self) -> list[str]:
        return self._labels("lost")

    @property
    def recordable(self) -> list[str]:
        return self._labels("recordable")

    @property
    def unverifiable(self) -> list[str]:
        return self._labels("unverifiable")

    @property
    def record_command(self) -> str:
        """The command that records the unverifiable lost migrations once a person checked them.

        ``dbrepair --record`` rather than ``migrate --fake APP NAME``: it records exactly the
        named migrations, also when an applied migration depends on them (``migrate`` refuses
        that inconsistent history, and dbinit's checks stop ``migrate`` while records are lost),
        then verifies and records the ones that were waiting for them.
        """
        arguments = " ".join(v.record_arguments for v in self.apps.values() if v.unverifiable)
        return f"python manage.py dbrepair {arguments}" if arguments else ""

    @property
    def partial(self) -> list[AppVerdict]:
        return [v for v in self.apps.values() if v.partial]

    @property
    def blocked(self) -> list[str]:
        """Pending migrations that must not be applied: lost ones and partly migrated apps."""
        out = []
        for v in self.apps.values():
            out += [f"{v.app}.{n}" for n in (v.pending if v.partial else v.lost)]
        return out

    def still_pending(self, pending_labels) -> list[str]:
        blocked = set(self.blocked)
        return [p for p in pending_labels if p not in blocked]


def _touched(operation) -> set[str]:
    """Lower-case model names an operation changes in the state (its own app)."""
    if isinstance(operation, SeparateDatabaseAndState):
        return set().union(*(_touched(op) for op in operation.state_operations)) if operation.state_operations else set()
    if isinstance(operation, RunSQL):
        return set().union(*(_touched(op) for op in operation.state_operations)) if operation.state_operations else set()
    names = set()
    for attribute in ("name_lower", "model_name_lower", "old_name_lower", "new_name_lower"):
        value = getattr(operation, attribute, None)
        if isinstance(value, str):
            names.add(value)
    return names


def _has_code(migration) -> bool:
    """Whether the migration runs code whose effect no state describes (RunPython, bare RunSQL)."""
    return any(isinstance(op, RunPython) or (isinstance(op, RunSQL) and not op.state_operations)
               for op in migration.operations)


def _apps_with_tables(loader, app_labels, catalogue) -> set[str]:
    """Cheap pre-test (no rendering): which of the apps already have a table of their final state?"""
    found = set()
    for (app, name), model_state in loader.project_state().models.items():
        if app in app_labels and app not in found:
            if catalogue.has_table(model_state.options.get("db_table") or f"{app}_{name}"):
                found.add(app)
    return found


def implied_keys(executor, full_plan=None) -> set:
    """Pending migrations that an applied one depends on (directly or not): they ran for sure."""
    loader = executor.loader
    applied = {k for k in loader.applied_migrations if k in loader.graph.nodes}
    full_plan = full_plan or executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
    included = set(applied)
    for migration, _ in reversed(full_plan):
        key = (migration.app_label, migration.name)
        if key in included:
            included |= {parent.key for parent in loader.graph.node_map[key].parents}
    return included - applied


def applied_state(executor):
    """The migration state the database's records imply, and the pending migrations it includes.

    That is the applied migrations, plus every pending one an applied migration depends on:
    those ran for sure (their records were lost), and without them the state of their
    dependants cannot even be built. Built as ``migrate`` builds its state, in plan order.
    """
    from django.db.migrations.state import ProjectState

    loader = executor.loader
    full_plan = executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
    implied = implied_keys(executor, full_plan)
    included = set(loader.applied_migrations) | implied
    state = ProjectState(real_apps=loader.unmigrated_apps)
    for migration, _ in full_plan:
        if (migration.app_label, migration.name) in included:
            migration.mutate_state(state, preserve=False)
    return state, implied


def refuse_blind_apply(executor, pending, step="migrate") -> None:
    """Raise E033 when a pending migration is already, wholly or partly, in the database."""
    from . import errors

    blocked = [b for b in verify(executor).blocked if b in {f"{m.app_label}.{m.name}" for m in pending}]
    if blocked:
        shown = ", ".join(blocked[:6]) + (f" and {len(blocked) - 6} more" if len(blocked) > 6 else "")
        raise errors.DbinitError(errors.E033, step=step, count=len(blocked), migrations=shown)


def unapplied(executor) -> list:
    """Every migration not recorded as applied, in plan order.

    More than ``migrate``'s plan: a migration that an applied one depends on is not in
    that plan (its app's leaf is applied), yet its record is lost all the same.
    """
    loader = executor.loader
    missing = set(loader.graph.nodes) - set(loader.applied_migrations)
    if not missing:
        return []
    full_plan = executor.migration_plan(loader.graph.leaf_nodes(), clean_start=True)
    return [m for m, _ in full_plan if (m.app_label, m.name) in missing]


def verify(executor, catalogue: Catalogue | None = None, state=None) -> Verification:
    """Judge every unapplied migration of ``executor``'s database against its schema.

    ``state``: the result of :func:`applied_state`, when the caller has it already.
    """
    from .drift import present

    connection = executor.connection
    loader = executor.loader
    pending = unapplied(executor)
    result = Verification()
    if not pending:
        return result
    catalogue = catalogue or Catalogue(connection)
    by_app: dict[str, list] = {}
    for migration in pending:
        by_app.setdefault(migration.app_label, []).append(migration)
    for app, migrations in by_app.items():
        result.apps[app] = AppVerdict(app, [m.name for m in migrations])
    implied = state[1] if state else implied_keys(executor)
    if not catalogue.table_types and not implied:
        return result  # an empty database: everything is simply pending
    suspects = _apps_with_tables(loader, set(by_app), catalogue) | {k[0] for k in implied}
    if not suspects:
        return result
    state, implied = state or applied_state(executor)
    applied = set(loader.applied_migrations)
    expectation = Expectation(connection, raw_sql_models(loader, loader.graph.nodes))
    touched = {app: set() for app in suspects}
    for migration in pending:
        if migration.app_label in suspects:
            for op in migration.operations:
                touched[migration.app_label] |= _touched(op)

    def facts_of(state, app, names=None) -> set:
        names = touched[app] if names is None else names
        apps = _render(state, {(app, n) for n in names})
        facts = set()
        for name in names:
            try:
                model = apps.get_model(app, name)
            except LookupError:
                continue  # not created yet, or deleted
            if not expectation.is_expected(model):
                continue  # swapped out (auth.User here), proxy or unmanaged: no table of its own
            throughs = [getattr(f.remote_field, "through", None) for f in model._meta.local_many_to_many]
            models = [model] + [t for t in throughs if t is not None and not isinstance(t, str)
                                and t._meta.auto_created]
            for m in models:
                if expectation.is_expected(m):
                    facts |= set(expectation.schema(m, catalogue).facts)
        return facts

    state = state.clone()
    # Mutated unrendered (cheap): each step renders only the models it looks at (see _render).
    state.__dict__.pop("apps", None)
    # Pending migrations that applied ones depend on: lost for sure, judged against the implied state.
    for migration in pending:
        key = (migration.app_label, migration.name)
        if key not in implied:
            continue
        verdict = result.apps[migration.app_label]
        verdict.lost.append(migration.name)
        names = set().union(*(_touched(op) for op in migration.operations)) if migration.operations else set()
        missing = [f for f in facts_of(state, migration.app_label, names)
                   if _applicable(f, catalogue) and not present(f, catalogue)]
        if missing:
            verdict.partial = True
            verdict.missing += sorted(describe(f) for f in missing)
        if names:
            verdict.seen.add(migration.name)
    rest = [m for m in pending if (m.app_label, m.name) not in implied]
    steps = {app: [facts_of(state, app)] for app in suspects}
    for migration in rest:
        state = migration.mutate_state(state, preserve=False)
        if migration.app_label in suspects:
            steps[migration.app_label].append(facts_of(state, migration.app_label))
    for app in suspects:
        chain = [m for m in rest if m.app_label == app]
        if chain and not result.apps[app].partial:
            _judge(result.apps[app], chain, steps[app], catalogue)
    _lost_by_descent(result, pending, loader)
    _classify(result, pending)
    _plan_recording(result, pending, loader, applied)
    return result


def _classify(result: Verification, pending):
    """Split each app's lost migrations into recordable ones and ones a person must vouch for.

    A lost migration that runs code and changes nothing the schema shows cannot be verified;
    the lost ones after it in its app wait for it (recording them first would hide it).
    """
    by_key = {(m.app_label, m.name): m for m in pending}
    for verdict in result.apps.values():
        if verdict.partial:
            continue
        order = {n: i for i, n in enumerate(verdict.pending)}
        verdict.lost.sort(key=order.get)
        for name in verdict.lost:
            if _has_code(by_key[(verdict.app, name)]) and name not in verdict.seen:
                verdict.unverifiable.append(name)
            elif not verdict.unverifiable:
                verdict.recordable.append(name)


def _render(state, keys):
    """Render ``keys``' models and every model they refer to, not the whole project.

    Rendering all of a large project's models (about 150 here) at each of hundreds of
    steps would take minutes; the models a step looks at and their relations are a few.
    """
    from django.db.migrations.state import StateApps
    from django.db.migrations.utils import resolve_relation

    wanted, todo = set(), [k for k in keys if k in state.models]
    while todo:
        key = todo.pop()
        if key in wanted or key not in state.models:
            continue
        wanted.add(key)
        model_state = state.models[key]
        references = [getattr(f.remote_field, a, None) for f in model_state.fields.values()
                      if getattr(f, "remote_field", None) is not None for a in ("model", "through")]
        references += list(model_state.bases)
        for reference in references:
            if reference is None or reference is models.Model or (
                    isinstance(reference, type) and not hasattr(reference, "_meta")):
                continue
            if isinstance(reference, type) and reference._meta.abstract:
                continue
            try:
                todo.append(resolve_relation(reference, key[0], key[1]))
            except (TypeError, ValueError, AttributeError):
                continue
    return StateApps(state.real_apps, {k: state.models[k] for k in wanted}, ignore_swappable=True)


def _lost_by_descent(result: Verification, pending, loader):
    """A pending migration that a lost one depends on ran too (in whichever app it is).

    A data migration that another app's verified migration builds on is lost, not pending;
    whether its code ran is then for a person to confirm (W029).
    """
    lost = {(v.app, n) for v in result.apps.values() for n in v.lost}
    for migration in reversed(pending):
        key = (migration.app_label, migration.name)
        verdict = result.apps[migration.app_label]
        if key in lost or verdict.partial:
            continue
        children = loader.graph.node_map[key].children
        if not any(child.key in lost for child in children):
            continue
        lost.add(key)
        verdict.lost.append(migration.name)


def _applicable(fact, catalogue) -> bool:
    """Facts about a table that is not there (or a column that is not) are decided by that fact alone."""
    kind, table = fact[0], fact[1]
    if kind == "table":
        return True
    if not catalogue.has_table(table):
        return False
    if kind == "null":
        return catalogue.has_column(table, fact[2])
    return True


def _judge(verdict: AppVerdict, migrations, steps, catalogue):
    from .drift import present

    changed = set().union(*steps) - set.intersection(*steps)
    shown = {f: present(f, catalogue) for f in changed if _applicable(f, catalogue)}

    def mismatches(k):
        return [f for f, there in shown.items()
                if there != (f in steps[k]) and not (there and _explained(f, steps[k], shown))]

    candidates = []
    for k in range(len(steps)):
        # A step is evidence only if its migration changed the schema.
        evidence = k == 0 or steps[k] != steps[k - 1]
        if evidence and not mismatches(k):
            candidates.append(k)
    if not candidates:
        best = min(range(len(steps)), key=lambda k: (len(mismatches(k)), -k))
        wrong = mismatches(best)
        verdict.partial = True
        verdict.missing += sorted(describe(f) for f in wrong if f in steps[best])
        verdict.unexpected += sorted(describe(f) for f in wrong if f not in steps[best])
        verdict.lost += [m.name for m in migrations[:best]]
        return
    k = max(candidates)
    if k or verdict.lost:
        # Records are lost here: the migrations right after the last evidence that change nothing
        # the schema shows and run no code leave the database as it is; record them too rather
        # than re-run operations (a RenameIndex, say) over objects that are already in place.
        while k < len(migrations) and steps[k + 1] == steps[k] and not _has_code(migrations[k]):
            k += 1
    verdict.lost += [m.name for m in migrations[:k]]
    verdict.seen |= {m.name for i, m in enumerate(migrations) if steps[i + 1] != steps[i]}


def _explained(fact, facts, shown) -> bool:
    """Whether a present object that step ``facts`` no longer lists is one it lists under another name.

    An index that RenameIndex gave a name covers the same columns as the unnamed one
    before it: one object, two descriptions.
    """
    if fact[0] not in ("index", "unique", "check") or not fact[3]:
        return False
    return any(g[0] == fact[0] and g[1] == fact[1] and set(g[3] or ()) == set(fact[3]) and shown.get(g, True)
               for g in facts if g[0] == fact[0])


def _plan_recording(result: Verification, pending, loader, applied):
    """Keep only what can be recorded in plan order: every parent applied or recorded first."""
    recordable = {(v.app, n) for v in result.apps.values() for n in v.recordable}
    done = set(applied)
    keep = set()
    for migration in pending:
        key = (migration.app_label, migration.name)
        if key not in recordable:
            continue
        if all(parent.key in done for parent in loader.graph.node_map[key].parents):
            done.add(key)
            keep.add(key)
    for verdict in result.apps.values():
        verdict.recordable = [n for n in verdict.recordable if (verdict.app, n) in keep]
    result.order = [(m.app_label, m.name) for m in pending if (m.app_label, m.name) in keep]


def record(connection, verification: Verification) -> list[str]:
    """Record the verified lost migrations as applied (none is run); return their labels."""
    recorder = MigrationRecorder(connection)
    recorded = []
    for key in verification.order:
        recorder.record_applied(*key)
        recorded.append(label(key))
    logger.info("Recorded %d verified migration(s)", len(recorded))
    return recorded


def checked_migrations(connection, labels) -> list[tuple[str, str]]:
    """The migrations a person checked by hand (``dbrepair --record APP.NAME``), in plan order.

    Only pending migrations that exist on disk are accepted (E035 otherwise); nothing is written.
    """
    from django.db.migrations.executor import MigrationExecutor

    from . import errors

    pending = [(m.app_label, m.name) for m in unapplied(MigrationExecutor(connection))]
    wanted = set()
    for item in labels:
        app, _, name = item.partition(".")
        if (app, name) not in pending:
            raise errors.DbinitError(errors.E035, migration=item, app=app or "APP")
        wanted.add((app, name))
    return [key for key in pending if key in wanted]


def record_checked(connection, keys) -> list[str]:
    """Record ``keys`` (from :func:`checked_migrations`) as applied, none is run; return their labels."""
    recorder = MigrationRecorder(connection)
    for key in keys:
        recorder.record_applied(*key)
    return [label(key) for key in keys]
