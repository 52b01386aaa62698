"""The migration-set fingerprint: one digest naming everything that decides what ``migrate`` builds.

Its parts: the content of every migration file of every installed app (read
from disk, never imported, so computing it costs a few file reads and no
migration module), Django's version, the engine and its major version, and
the settings that change the schema (``INSTALLED_APPS``, ``AUTH_USER_MODEL``,
``MIGRATION_MODULES``, ``DEFAULT_AUTO_FIELD``).

Two uses:

* After a successful initialisation the digest is stored in the database
  (``dbinit.Metadata``, key ``migration_fingerprint``, with the number of
  applied-migration records). Start-up checks, a no-op ``initdb`` and the
  ``/health/`` readiness probe compare it with the files on disk and load the
  migration graph only when they differ: Django's migrate machinery stays the
  authority; a match only ever means "same as last verified".
* It names the verified template a fresh database is copied from
  (:mod:`dbinit.templates`) and heads the committed snapshot.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import logging
import os
from dataclasses import dataclass, field
from pathlib import Path

import django
from django.core.signals import setting_changed
from django.db import DatabaseError
from django.dispatch import receiver

logger = logging.getLogger("dbinit")

KEY = "migration_fingerprint"
SCHEMA_SETTINGS = ("INSTALLED_APPS", "AUTH_USER_MODEL", "MIGRATION_MODULES", "DEFAULT_AUTO_FIELD", "DATABASE_ROUTERS")


@dataclass(frozen=True)
class Fingerprint:
    """A migration-set digest, and the parts that went into it."""

    digest: str
    parts: dict = field(default_factory=dict, compare=False)  # what went into it, for messages

    @property
    def short(self) -> str:
        return self.digest[:12]

    def mismatch(self, stamp: dict | None) -> str | None:
        """Why something stamped ``stamp`` (a template, a snapshot) cannot stand for this fingerprint; None if it can."""
        if not stamp or "digest" not in stamp:
            return "it carries no fingerprint"
        if stamp["digest"] != self.digest:
            return "its fingerprint differs (" + (", ".join(self.differences(stamp)) or "digest") + ")"
        return None

    def differences(self, other_parts: dict) -> list[str]:
        """Which parts differ from ``other_parts`` (another fingerprint's), e.g. ``['django 5.2 != 4.2']``."""
        found = []
        for key in ("django", "engine", "alias", "settings", "migrations"):
            mine, theirs = self.parts.get(key), other_parts.get(key)
            if mine != theirs:
                found.append(f"{key} {mine} != {theirs}" if key in ("django", "engine", "alias") else f"{key} changed")
        return found


def migration_files() -> list[tuple[str, Path]]:
    """``(app_label, path)`` of every migration file of every installed app, found without importing them.

    The same rule as Django's loader: the app's migrations package (``MIGRATION_MODULES``
    honoured), its ``.py`` modules whose names do not start with ``_`` or ``~``.
    """
    return [(label, Path(path)) for label, path in _migration_paths()]


def _migration_paths() -> list[tuple[str, str]]:
    """:func:`migration_files` as plain strings: this runs in every worker's start-up check."""
    from django.apps import apps
    from django.db.migrations.loader import MigrationLoader

    found = []
    for config in apps.get_app_configs():
        module_name, _ = MigrationLoader.migrations_module(config.label)
        if module_name is None:
            continue
        try:
            spec = importlib.util.find_spec(module_name)  # imports the parents (the app), not the package
        except (ImportError, ValueError):
            spec = None
        if spec is None or not spec.submodule_search_locations:
            continue
        for folder in spec.submodule_search_locations:
            try:
                entries = sorted((e.name, e.path) for e in os.scandir(folder)
                                 if e.name.endswith(".py") and not e.name.startswith(("_", "~")) and e.is_file())
            except OSError:
                continue
            found += [(config.label, path) for _, path in entries]
    return found


def _read(path: str) -> bytes:
    """A file's bytes with plain os calls: half the cost of open() for 236 small files per start-up."""
    fd = os.open(path, os.O_RDONLY)
    try:
        chunks = []
        while chunk := os.read(fd, 1 << 16):
            chunks.append(chunk)
    finally:
        os.close(fd)
    return b"".join(chunks)


def engine_of(connection) -> str:
    """``postgresql 15`` / ``sqlite 3``: the vendor and major version (connects if needed)."""
    if connection.vendor == "postgresql":
        return f"postgresql {connection.pg_version // 10000}"
    if connection.vendor == "sqlite":
        import sqlite3

        return f"sqlite {sqlite3.sqlite_version_info[0]}"
    return connection.vendor


def compute(engine: str, *, alias: str = "default", django_version: str | None = None) -> Fingerprint:
    """The fingerprint of the migration files on disk for ``engine`` (see :func:`engine_of`).

    ``alias``: the routers decide per alias what migrate builds there, so it is a part too.
    """
    from django.conf import settings

    files = hashlib.sha256()
    count = 0
    for app_label, path in _migration_paths():
        files.update(f"{app_label}/{os.path.basename(path)}\0".encode())
        files.update(hashlib.sha256(_read(path)).digest())
        count += 1
    schema_settings = {name: getattr(settings, name, None) for name in SCHEMA_SETTINGS}
    parts = {
        "django": django_version or django.get_version(),
        "engine": engine,
        "alias": alias,
        "settings": hashlib.sha256(json.dumps(schema_settings, sort_keys=True, default=str).encode()).hexdigest(),
        "migrations": files.hexdigest(),
        "files": count,
    }
    digest = hashlib.sha256(json.dumps(parts, sort_keys=True).encode()).hexdigest()
    return Fingerprint(digest, parts)


def current(connection) -> Fingerprint:
    """The fingerprint of the files on disk for ``connection``'s engine (connects if needed)."""
    return compute(engine_of(connection), alias=connection.alias)


# (alias, engine) -> the fingerprint of the files this process found (see current_in_this_process).
_this_process: dict[tuple[str, str], Fingerprint] = {}


def current_in_this_process(connection) -> Fingerprint:
    """:func:`current`, computed once per process, alias and engine.

    The migration files a process found at its first check belong to the code it runs (as
    :func:`dbinit.readiness.release_migrations` reads them once), so the probes that trust the
    fingerprint never list or hash them again; a new release is a new process. Changing a
    schema setting (tests' ``override_settings``) forgets it.
    """
    key = (connection.alias, engine_of(connection))
    if key not in _this_process:
        _this_process[key] = compute(key[1], alias=key[0])
    return _this_process[key]


@receiver(setting_changed)
def _forget_this_process(*, setting, **kwargs):
    if setting in SCHEMA_SETTINGS:
        _this_process.clear()


def for_server(connection) -> Fingerprint:
    """:func:`current`, without connecting to the (maybe missing) database itself.

    PostgreSQL: the server's major version read through the maintenance database.
    """
    if connection.vendor == "postgresql":
        from .django_private import maintenance_cursor

        with maintenance_cursor(connection) as cursor:
            cursor.execute("SHOW server_version_num")
            return compute(f"postgresql {int(cursor.fetchone()[0]) // 10000}", alias=connection.alias)
    return current(connection)


# --- what the database remembers ---------------------------------------------------------
def _applied_records(connection) -> int:
    from django.db.migrations.recorder import MigrationRecorder

    return MigrationRecorder(connection).migration_qs.count()


def remember(connection, fingerprint: Fingerprint | None = None) -> None:
    """Store the fingerprint of the migration set just verified (bookkeeping: never fails a run)."""
    from .models import Metadata

    fingerprint = fingerprint or current(connection)
    try:
        value = json.dumps({"digest": fingerprint.digest, "applied": _applied_records(connection),
                            **fingerprint.parts})
        Metadata.objects.using(connection.alias).update_or_create(key=KEY, defaults={"value": value})
    except DatabaseError as exc:
        logger.warning("Could not store the migration fingerprint: %s", exc)


def forget(connection) -> None:
    """Drop the stored fingerprint: the migration state changed outside a verified initialisation."""
    from .models import Metadata

    try:
        Metadata.objects.using(connection.alias).filter(key=KEY).delete()
    except DatabaseError:  # no dbinit tables (yet, or any more): nothing to forget
        pass


def _stored_and_applied(connection) -> tuple[dict | None, int | None]:
    """The stored fingerprint and the number of applied-migration records, in one round trip."""
    from django.db.migrations.recorder import MigrationRecorder

    from .models import Metadata

    qn = connection.ops.quote_name
    sql = (f"SELECT (SELECT {qn('value')} FROM {qn(Metadata._meta.db_table)} WHERE {qn('key')} = %s), "
           f"(SELECT COUNT(*) FROM {qn(MigrationRecorder.Migration._meta.db_table)})")
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, [KEY])
            value, applied = cursor.fetchone()
    except DatabaseError:  # no dbinit or migration table yet
        return None, None
    try:
        return (json.loads(value) if value else None), applied
    except ValueError:
        return None, applied


def unchanged(connection, *, once_per_process=False) -> Fingerprint | None:
    """The fingerprint when the files on disk and the applied records are as last verified, else None.

    A match means "same as last verified", nothing more: on a mismatch the caller loads the
    migration graph and lets Django's machinery decide. ``once_per_process``: the files as
    this process first found them (:func:`current_in_this_process`; start-up and the probes).
    """
    remembered, applied = _stored_and_applied(connection)
    if not remembered:
        return None
    fingerprint = current_in_this_process(connection) if once_per_process else current(connection)
    reason = fingerprint.mismatch(remembered)
    if reason:
        logger.info("Migration set not as last verified (%s): loading the migration graph", reason)
        return None
    if applied != remembered.get("applied"):
        logger.info("Applied-migration records changed since the last verification")
        return None
    return fingerprint
