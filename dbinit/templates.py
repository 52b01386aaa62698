"""Fresh databases from a verified template instead of replaying every migration.

A template is what ``migrate`` makes of an empty database, made once per
migration-set fingerprint (:mod:`dbinit.fingerprint`) and stamped with it:

* SQLite: ``DBINIT_TEMPLATE_DIR/<fingerprint>-f<FORMAT>.sqlite3``, built by migrating an
  empty file, copied into a new database with SQLite's backup API.
* PostgreSQL: the database ``DBINIT_TEMPLATE_PREFIX<fingerprint>`` (connections
  disallowed, fingerprint and :data:`FORMAT` in its comment), built by migrating an empty
  database, cloned with ``CREATE DATABASE ... TEMPLATE``. Needs a role that may
  create databases, which creating the missing database needs anyway. (A role
  without CREATEDB gets no template: the database must exist already, and an
  existing database is migrated normally.)

Only a database that does not exist yet is made from a template (nothing of
anyone's can be overwritten), and only from a template whose stamped
fingerprint equals the one of the files on disk: a stale template, one from
another Django version or engine, or a corrupted file is ignored
(``dbinit.I017``) and the normal path taken. When no template matches, one is
built (migrating an empty database, as before) and then copied, so the next
database is fast. The copy ends exactly where ``migrate`` ends: same tables,
columns, indexes, constraints, sequences, ``django_migrations`` rows, content
types, permissions and reference rows (tests/test_templates.py compares them).

A bounded number: building a template removes the templates of older migration sets of the same
engine, alias and schema settings beyond the ``DBINIT_TEMPLATE_KEEP`` most recently built, and of
each kept set the seeded templates beyond as many (see :func:`outdated`); only what dbinit names is
ever removed.

Seeded templates: outside production, when initdb seeds the admin with the
well-known development password (``admin123``, public anyway), a second
template holds the base template plus initdb's seed (the admin with its
password hash, the role groups), so a copy needs no password hashing (PBKDF2
costs about 0.35 s of CPU). It is named and stamped with the seed it holds
(:class:`Seed`: the admin's address, the environment and the password
hasher); any other password, ``--no-seed`` and the test suite's databases use
the base template and are seeded (or not) as usual. Production never uses
templates (``DBINIT_TEMPLATES`` defaults to off there) and refuses the
well-known password anyway.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import sqlite3
import time
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import NamedTuple

from django.conf import settings
from django.db import DatabaseError, connections

from . import errors, migrations_state, snapshots
from . import fingerprint as fingerprints
from .django_private import maintenance_cursor
from .errors import DbinitError
from .results import TemplateUse

logger = logging.getLogger("dbinit")

# Key of the PostgreSQL advisory lock (in the maintenance database) held while building a template.
BUILD_LOCK_KEY = 0x6462696E69740002

# What a template holds beyond the migrations' own output, as a number. A template of another format
# (left by an older dbinit, on the server or in DBINIT_TEMPLATE_DIR) is ignored and rebuilt, never
# patched after each copy. 1: the migrations only; 2: and initdb's unique index on django_migrations.
FORMAT = 2


def enabled() -> bool:
    return getattr(settings, "DBINIT_TEMPLATES", "off") == "on"


@dataclass(frozen=True)
class Seed:
    """initdb's seed with the well-known development password, as a seeded template holds it.

    Only that password: it is public, so a template (and every copy) may hold its hash, and
    a copy is known to hold the configured password without hashing it. Its ``key`` names
    everything else that decides the rows seeding writes.
    """

    admin_email: str
    environment: str

    @cached_property
    def key(self) -> str:
        digest = hashlib.sha256(json.dumps({
            "admin": self.admin_email, "environment": self.environment,
            "hasher": settings.PASSWORD_HASHERS[0],  # testing hashes with MD5, the others with PBKDF2
        }, sort_keys=True).encode())
        for path in _seed_code():  # what the seed writes is decided there: a change makes a new template
            digest.update(Path(path).read_bytes())
        return digest.hexdigest()[:10]

    def apply(self, alias) -> None:
        """Seed ``alias``'s (template) database as initdb's seed step would; raises DbinitError on any warning."""
        from django.db import connections

        from . import locking, seeding
        from .configuration import WELL_KNOWN_PASSWORD

        if connections[alias].vendor == "postgresql":
            # initdb's lock creates its lease table in every database it initialises: so does this.
            locking.ensure_lease_table(connections[alias])
        report = seeding.seed(alias, admin_email=self.admin_email, admin_password=WELL_KNOWN_PASSWORD,
                              environment=self.environment, generate_password=False)
        if report.warnings:  # a template holds all of the seed or none of it
            raise report.warnings[0]


def _seed_code() -> list[str]:
    """The source files of the code that writes the seed (dbinit's seeding, the reference rows, the user model)."""
    import importlib

    from django.contrib.auth import get_user_model

    modules = ("dbinit.seeding", "accounts.reference", "tenants.reference", get_user_model().__module__)
    return [importlib.import_module(name).__file__ for name in modules]


def seed_for(admin_email, admin_password, environment) -> Seed | None:
    """The seed a seeded template may hold for this run, or None (the base template, then seeding as usual)."""
    from accounts.models import normalize_email

    from .configuration import WELL_KNOWN_PASSWORD

    if not enabled() or environment == "production" or admin_password != WELL_KNOWN_PASSWORD or not admin_email:
        return None
    return Seed(normalize_email(admin_email), environment)


def _ignored(where, reason) -> DbinitError:
    error = DbinitError(errors.I017, template=where, reason=reason)
    logger.info("%s %s", error.code, error.message)
    return error


@contextmanager
def _scratch_connection(connection, name):
    """``connection`` pointed at database ``name`` for a while, as Django's test runner does it.

    The alias stays the same, so the routers decide what is migrated there exactly as they
    would for the real database (``migrate --database ALIAS``).
    """
    original = connection.settings_dict["NAME"]
    connection.close()
    connection.settings_dict["NAME"] = name
    try:
        yield connection
    finally:
        with suppress(DatabaseError):
            connection.close()
        connection.settings_dict["NAME"] = original


def _fill_empty(connection, fp, use: TemplateUse | None, from_snapshot=True):
    """Make the empty database what ``migrate`` makes of it, then stamp it with ``fp``.

    From the committed snapshot when its fingerprint matches (``from_snapshot``), else by
    migrating as ``migrate`` does.
    """
    from django.db.migrations.executor import MigrationExecutor

    path = None
    if from_snapshot:
        path, ignored = snapshots.usable(connection.vendor, fp)
        if ignored and use is not None:
            use.ignored.append(ignored)
    if path:
        try:
            snapshots.load(connection, path)
            if use is not None:
                use.snapshot = str(path)
        except DbinitError as exc:  # I018: left the database empty; migrate instead
            logger.info("%s %s", exc.code, exc.message)
            if use is not None:
                use.ignored.append(exc)
            path = None
    if not path:
        executor = MigrationExecutor(connection)
        migrations_state.apply(executor, migrations_state.forward_plan(executor), step="template")
    else:  # a snapshot holds what migrate makes; initdb's unique index on the history comes with it
        migrations_state.ensure_unique_history(connection)
    fingerprints.remember(connection, fp)


# --- SQLite ------------------------------------------------------------------------------
def template_dir() -> Path:
    return Path(settings.DBINIT_TEMPLATE_DIR)


def sqlite_template(fp, seed: Seed | None = None) -> Path:
    """The template file of ``fp`` (and ``seed``); its name carries the format (a file holds no other stamp)."""
    return template_dir() / (f"{fp.digest[:32]}-f{FORMAT}" + (f"-seed-{seed.key}" if seed else "") + ".sqlite3")


def read_sqlite_stamp(path: Path, verify=True) -> dict | None:
    """The fingerprint stamped in an SQLite template; raises sqlite3.DatabaseError for a damaged file
    (``verify``: every page checked first, as before a copy; pruning reads the stamp alone)."""
    conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True)
    try:
        check = conn.execute("PRAGMA quick_check(1)").fetchone()[0] if verify else "ok"
        if check != "ok":
            raise sqlite3.DatabaseError(check)
        row = conn.execute("SELECT value FROM dbinit_metadata WHERE key = ?", [fingerprints.KEY]).fetchone()
    finally:
        conn.close()
    return json.loads(row[0]) if row else None


def _sqlite_copy(source: Path, target: Path) -> bool:
    """Copy ``source`` to ``target`` if ``target`` does not exist; False if another process made it first."""
    partial = target.with_name(f".{target.name}.{os.getpid()}.partial")
    try:
        src = sqlite3.connect(f"file:{source}?mode=ro", uri=True)
        dst = sqlite3.connect(partial)
        try:
            src.backup(dst)  # a consistent copy even while another process reads the source
        finally:
            src.close()
            dst.close()
        try:
            os.link(partial, target)  # appears whole, and never over a file someone else made
        except FileExistsError:
            return False
        return True
    finally:
        with suppress(FileNotFoundError):
            partial.unlink()


def fill_empty_sqlite(connection, path: Path, fp, use: TemplateUse | None = None, from_snapshot=True):
    """Make the new SQLite file ``path`` what ``migrate`` makes of an empty one."""
    with _scratch_connection(connection, str(path)):
        _fill_empty(connection, fp, use, from_snapshot)


def _build_sqlite(connection, template: Path, fill) -> None:
    """Build the template file ``template`` by ``fill(path)`` on a private file, then put it in place."""
    template.parent.mkdir(parents=True, exist_ok=True)
    building = template.with_name(f".{template.name}.{os.getpid()}.building")
    with suppress(FileNotFoundError):
        building.unlink()
    try:
        fill(building)
        os.replace(building, template)  # a reader sees the old template or the whole new one
    finally:
        with suppress(FileNotFoundError):
            building.unlink()
    # The same migration set's files of an older format are never used again.
    digest = template.name.partition("-")[0]
    for older in template.parent.glob(f"{digest}*.sqlite3"):
        if not older.name.startswith(f"{digest}-f{FORMAT}"):
            with suppress(FileNotFoundError):
                older.unlink()


def _sqlite_usable(template: Path, fp, use: TemplateUse) -> bool:
    """Whether the template file exists and its stamp matches ``fp``; a bad one is reported (I017)."""
    if not template.exists():
        return False
    try:
        reason = fp.mismatch(read_sqlite_stamp(template))
    except (sqlite3.DatabaseError, ValueError) as exc:
        reason = f"it is damaged ({str(exc).strip() or type(exc).__name__})"
    if reason:
        use.ignored.append(_ignored(str(template), reason))
        return False
    return True


def _seed_sqlite(connection, base: Path, seed: Seed):
    """How a seeded template file is filled: a copy of the base template, then initdb's seed."""
    def fill(path: Path):
        if not _sqlite_copy(base, path):
            raise FileExistsError(path)
        with _scratch_connection(connection, str(path)):
            seed.apply(connection.alias)
    return fill


def restore_sqlite(connection, target: Path, seed: Seed | None = None) -> TemplateUse:
    """Make the missing SQLite file ``target`` from the matching template (built first if need be).

    ``seed``: from the seeded template holding it when there is one (built from the base otherwise).
    """
    use = TemplateUse()
    if not enabled():
        return use
    fp = fingerprints.compute(fingerprints.engine_of(connection))
    template = base = sqlite_template(fp)
    seeded = sqlite_template(fp, seed) if seed else None
    if not (seeded and _sqlite_usable(seeded, fp, use)):
        if not _sqlite_usable(base, fp, use):
            try:
                _build_sqlite(connection, base, lambda path: fill_empty_sqlite(connection, path, fp, use))
            except (DbinitError, DatabaseError, sqlite3.Error, OSError) as exc:
                # The normal path migrates the real database and reports the failure properly.
                logger.info("Template %s not built (%s); migrating normally", base, exc)
                return use
            use.built = True
        if seeded:
            try:
                _build_sqlite(connection, seeded, _seed_sqlite(connection, base, seed))
                use.built = True
            except (DbinitError, DatabaseError, sqlite3.Error, OSError) as exc:
                logger.info("Seeded template %s not built (%s); seeding after the copy", seeded, exc)
                seeded = None
    if use.built:
        _prune_sqlite(fp, use)
    if seeded:
        template = seeded
    connection.close()  # the target must not be open while it appears
    try:
        copied = _sqlite_copy(template, target)
    except (sqlite3.Error, OSError) as exc:
        # A folder that exists but takes no new file (a read-only mount, /proc): the normal path
        # fails the same way and says so with its id (E016) and the fix.
        logger.info("Template %s not copied to %s (%s); migrating normally", template, target, exc)
        return use
    if copied:
        use.source, use.seeded = str(template), bool(seeded)
    return use


# --- PostgreSQL --------------------------------------------------------------------------
def postgres_template_name(fp, seed: Seed | None = None) -> str:
    return f"{settings.DBINIT_TEMPLATE_PREFIX}{fp.digest[:24]}" + (f"_seed_{seed.key}" if seed else "")


def _stamp_of(cursor, name) -> tuple[bool, dict | None]:
    """(exists, stamped fingerprint) of database ``name``, read from the catalogue (no connection to it)."""
    cursor.execute("SELECT shobj_description(oid, 'pg_database') FROM pg_database WHERE datname = %s", [name])
    row = cursor.fetchone()
    if row is None:
        return False, None
    try:
        return True, json.loads(row[0] or "")
    except ValueError:
        return True, None


def _mismatch(fp, seed: Seed | None, stamp: dict | None) -> str | None:
    """Why a template stamped ``stamp`` cannot stand for ``fp`` (and ``seed``, for a seeded one)."""
    reason = fp.mismatch(stamp)
    if not reason and stamp.get("format", 1) != FORMAT:
        reason = f"an older dbinit made it (template format {stamp.get('format', 1)}, now {FORMAT})"
    if not reason and seed and stamp.get("seed") != seed.key:
        reason = "it holds another seed"
    return reason


@contextmanager
def scratch_postgres_database(connection, fp, use: TemplateUse | None = None, from_snapshot=True, keep_as=None,
                              template=None, seed: Seed | None = None):
    """A new database made what ``migrate`` makes of an empty one; dropped afterwards.

    ``keep_as``: instead of dropping it, stamp it, disallow connections and rename it to that name
    (a template appears whole or not at all). ``template`` and ``seed``: a copy of that (base)
    template with ``seed`` applied instead (a seeded template).
    """
    qn = connection.ops.quote_name
    name = f"{(keep_as or settings.DBINIT_TEMPLATE_PREFIX)[:40]}_b{os.getpid()}_{os.urandom(3).hex()}"
    with maintenance_cursor(connection) as cursor:
        cursor.execute(f"CREATE DATABASE {qn(name)}" + (f" TEMPLATE {qn(template)}" if template else ""))
    try:
        with _scratch_connection(connection, name):
            if seed:
                seed.apply(connection.alias)
            else:
                _fill_empty(connection, fp, use, from_snapshot)
        yield name
        if keep_as:
            with maintenance_cursor(connection) as cursor:
                stamp = {"digest": fp.digest, **fp.parts, "format": FORMAT, "built": round(time.time(), 3),
                         **({"seed": seed.key} if seed else {})}
                cursor.execute(f"COMMENT ON DATABASE {qn(name)} IS %s", [json.dumps(stamp)])
                # No session may hold a template open (it would block every clone): none is allowed.
                cursor.execute(f"ALTER DATABASE {qn(name)} ALLOW_CONNECTIONS false")
                cursor.execute(f"ALTER DATABASE {qn(name)} RENAME TO {qn(keep_as)}")
            name = None
    finally:
        if name:
            with maintenance_cursor(connection) as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS {qn(name)} WITH (FORCE)")


def _ensure_postgres_template(connection, cursor, fp, use, seed=None) -> str:
    """The template for ``fp`` (and ``seed``), built when missing or bad; call holding BUILD_LOCK_KEY."""
    qn = connection.ops.quote_name
    base = postgres_template_name(fp)
    template = postgres_template_name(fp, seed)
    exists, stamp = _stamp_of(cursor, template)  # built while we asked for the lock?
    reason = _mismatch(fp, seed, stamp) if exists else None
    if reason:
        use.ignored.append(_ignored(template, reason))
        cursor.execute(f"DROP DATABASE IF EXISTS {qn(template)} WITH (FORCE)")
    if not exists or reason:
        if seed:
            _ensure_postgres_template(connection, cursor, fp, use)
        with scratch_postgres_database(connection, fp, use, keep_as=template, template=base if seed else None,
                                       seed=seed):
            pass
        use.built = True
    return template


def _postgres_template(connection, seed: Seed | None = None) -> tuple[str | None, TemplateUse]:
    """The verified template to clone (built first if need be), or None for the normal path.

    ``seed``: the seeded template holding it when that can be had, else the base template.
    """
    use = TemplateUse()
    try:
        with maintenance_cursor(connection) as cursor:
            fp = fingerprints.for_server(connection)
            template = postgres_template_name(fp, seed)
            exists, stamp = _stamp_of(cursor, template)
            if exists and not _mismatch(fp, seed, stamp):
                use.seeded = bool(seed)
                return template, use
            cursor.execute("SELECT pg_try_advisory_lock(%s)", [BUILD_LOCK_KEY])
            if not cursor.fetchone()[0]:
                logger.info("Another process is building a template; migrating normally")
                return None, use
            try:
                try:
                    template = _ensure_postgres_template(connection, cursor, fp, use, seed)
                    use.seeded = bool(seed)
                except (DbinitError, DatabaseError) as exc:
                    if not seed:
                        raise
                    logger.info("Seeded template not built (%s); seeding after the copy", exc)
                    template = _ensure_postgres_template(connection, cursor, fp, use)
                if use.built:
                    _prune_postgres(connection, cursor, fp, use)
            finally:
                cursor.execute("SELECT pg_advisory_unlock(%s)", [BUILD_LOCK_KEY])
            return template, use
    except (DbinitError, DatabaseError) as exc:
        # No template (e.g. a failing migration): the normal path reports the failure properly.
        logger.info("No template (%s); migrating normally", exc)
        return None, TemplateUse(ignored=use.ignored)


def create_postgres_database(alias="default", seed: Seed | None = None) -> tuple[bool, TemplateUse]:
    """Create the missing PostgreSQL database, from the matching template when templates are on.

    ``seed``: from the seeded template holding it (see :func:`seed_for`) when possible.
    Returns (this process created it, what it did with templates).
    """
    from . import database

    template, use = _postgres_template(connections[alias], seed) if enabled() else (None, TemplateUse())
    try:
        created = database.create_postgres_database(alias, template=template)
    except DbinitError as exc:
        if template is None or exc.code != errors.E013.id:  # a server not reached: the same again without
            raise
        # The CREATE was refused: the template removed a moment ago as an older migration set by another
        # checkout's initdb, another role's, or held open by a session. The normal path, as without a
        # template (its own errors stand).
        logger.info("Template %s not cloned (%s); migrating normally", template, exc.message)
        template, use = None, TemplateUse(ignored=use.ignored)
        created = database.create_postgres_database(alias)
    if created and template:
        use.source = template
    else:
        use.seeded = False
    return created, use


# --- older migration sets' templates -----------------------------------------------------
# What dbinit names its templates (nothing else in the folder or on the server is ever removed).
SQLITE_NAME = re.compile(r"[0-9a-f]{32}-f[0-9]+(-seed-[0-9a-f]+)?\.sqlite3")
POSTGRES_NAME = r"[0-9a-f]{24}(_seed_[0-9a-f]+)?"  # after DBINIT_TEMPLATE_PREFIX


def _lineage(parts: dict) -> tuple:
    """What makes templates stand in for one another over time: the same engine, alias and schema
    settings. Another migration set or Django version of them is older history; a template of another
    alias or other schema settings is left alone."""
    return parts.get("engine"), parts.get("alias"), parts.get("settings")


class Found(NamedTuple):
    """A template pruning found: what names it (a path, a database name), its stamp, when it was
    built, whether its name says it is seeded."""

    what: object
    stamp: dict
    built: float
    seeded: bool


def outdated(found: list[Found], fp) -> list:
    """Of ``found`` (a place's templates), the ones to remove now that one of ``fp``'s was built. ``DBINIT_TEMPLATE_KEEP``
    (0 keeps every one) bounds two things, in ``fp``'s lineage only:

    * the migration sets: beyond the newest, every template goes (``fp``'s set is counted first and kept);
    * the seeded templates of each kept set: beyond the newest, they go (each holds one seed: admin
      address, environment, hasher, the seed code's source; a change of seed code makes another).
      The base template of a kept set always stays.
    """
    keep = settings.DBINIT_TEMPLATE_KEEP
    if not keep:
        return []
    ours = [f for f in found if isinstance(f.stamp.get("digest"), str) and _lineage(f.stamp) == _lineage(fp.parts)]
    newest: dict[str, float] = {}  # digest -> when its newest template was built
    for f in ours:
        if f.stamp["digest"] != fp.digest:
            newest[f.stamp["digest"]] = max(f.built, newest.get(f.stamp["digest"], f.built))
    removed = set(sorted(newest, key=newest.__getitem__, reverse=True)[keep - 1:])
    seeded: dict[str, list[Found]] = {}  # a kept digest -> its seeded templates
    for f in ours:
        if f.seeded and f.stamp["digest"] not in removed:
            seeded.setdefault(f.stamp["digest"], []).append(f)
    return [f.what for f in ours if f.stamp["digest"] in removed] + [
        f.what for variants in seeded.values() for f in sorted(variants, key=lambda f: f.built, reverse=True)[keep:]]


def _prune_sqlite(fp, use: TemplateUse) -> None:
    """Remove the template files :func:`outdated` names (built when: the file's time)."""
    found = []
    for path in template_dir().glob("*.sqlite3"):
        named = SQLITE_NAME.fullmatch(path.name)
        if not named:
            continue
        try:
            stamp, built = read_sqlite_stamp(path, verify=False), path.stat().st_mtime
        except (sqlite3.DatabaseError, ValueError, OSError):
            continue  # unreadable: judged, and replaced, when its own migration set comes back
        if isinstance(stamp, dict):
            found.append(Found(path, stamp, built, bool(named.group(1))))
    for path in outdated(found, fp):
        try:
            path.unlink()  # a process copying from it keeps reading its open file
        except FileNotFoundError:
            continue
        except OSError as exc:
            logger.info("Template %s not removed (%s)", path, exc)
            continue
        use.removed.append(str(path))


def _prune_postgres(connection, cursor, fp, use: TemplateUse) -> None:
    """Drop the template databases :func:`outdated` names (built when: their stamp's build time; an older
    dbinit's stamp has none and counts as oldest). Call holding BUILD_LOCK_KEY."""
    qn = connection.ops.quote_name
    prefix = settings.DBINIT_TEMPLATE_PREFIX
    name = re.compile(re.escape(prefix) + POSTGRES_NAME)
    try:
        cursor.execute("SELECT datname, shobj_description(oid, 'pg_database') FROM pg_database "
                       "WHERE starts_with(datname, %s) AND NOT datallowconn", [prefix])
        listed = cursor.fetchall()
    except DatabaseError as exc:  # bookkeeping: the template just built is used all the same
        logger.info("Older templates not looked for (%s)", exc)
        return
    found = []
    for datname, comment in listed:
        try:
            stamp = json.loads(comment or "")
            built = float(stamp.get("built") or 0)
        except (ValueError, TypeError, AttributeError):  # not a stamp dbinit wrote: not dbinit's to drop
            continue
        named = name.fullmatch(datname)
        if named:
            found.append(Found(datname, stamp, built, bool(named.group(1))))
    for datname in outdated(found, fp):
        try:
            # No FORCE: nobody can connect to a template; a clone still copying it is waited for.
            cursor.execute(f"DROP DATABASE IF EXISTS {qn(datname)}")
        except DatabaseError as exc:
            logger.info("Template %s not dropped (%s)", datname, exc)
            continue
        use.removed.append(datname)


# --- test databases ----------------------------------------------------------------------
def create_test_database(name: str, alias="default") -> TemplateUse:
    """Make ``alias``'s missing test database ``name`` from the verified base template: what initdb's
    migrate step makes (``migrate``'s tables and rows, plus initdb's unique index on the history).

    For test runners, before Django's test set-up (which then reuses it, ``keepdb``, and whose
    ``migrate`` finds nothing to apply). Nothing is seeded: initdb's seed step is not run.
    """
    connection = connections[alias]
    with _scratch_connection(connection, name):
        if connection.vendor == "sqlite":
            use = restore_sqlite(connection, Path(name))
        else:
            use = create_postgres_database(alias)[1]
        if use.used:
            # The template's stamp is dbinit's bookkeeping, which migrate does not write: not in a test database.
            fingerprints.forget(connection)
    return use


# --- the committed snapshot ----------------------------------------------------------------
def write_snapshot(connection):
    """Migrate an empty scratch database and write its content as the snapshot; returns (path, fingerprint).

    Always by migrating (never from the snapshot being replaced).
    """
    import tempfile

    fp = fingerprints.for_server(connection)
    if connection.vendor == "sqlite":
        with tempfile.TemporaryDirectory(prefix="dbinit-snapshot-") as folder:
            scratch = Path(folder) / "snapshot.sqlite3"
            fill_empty_sqlite(connection, scratch, fp, from_snapshot=False)
            body = snapshots.dump_sqlite(scratch)
    elif connection.vendor == "postgresql":
        with scratch_postgres_database(connection, fp, from_snapshot=False) as name:
            body = snapshots.dump_postgres(connection.settings_dict, name)
    else:
        raise DbinitError(errors.E003, engine=connection.settings_dict["ENGINE"])
    return snapshots.write(connection.vendor, fp, body), fp
