"""Which database aliases dbinit may write, and which of its models live on which alias.

dbinit asks Django's database routers exactly as ``migrate`` does
(``router.allow_migrate_model``): seeding, verification, the run history and
the checksums happen only on an alias where their models may be migrated.

An alias is *read-only to dbinit* (checked, never written) when it mirrors
another (``TEST["MIRROR"]``), when the routers let no model migrate to it, or
when its server refuses writes (PostgreSQL ``default_transaction_read_only``
or a standby in recovery; SQLite ``PRAGMA query_only`` or a ``mode=ro`` URI).
The first two are read from the settings; the last needs a connection.
"""

from __future__ import annotations

from django.apps import apps
from django.conf import settings
from django.db import DatabaseError, connections, router

from . import errors
from .errors import DbinitError


def aliases() -> list[str]:
    """Every alias in ``DATABASES``, in the order they are written."""
    return list(settings.DATABASES)


def _concrete_models():
    for model in apps.get_models(include_auto_created=True):
        opts = model._meta
        if not (opts.proxy or not opts.managed or opts.swapped):
            yield model


def hosts_model(alias: str, model) -> bool:
    """Whether ``model``'s table belongs on ``alias`` (the routers' ``allow_migrate``)."""
    return router.allow_migrate_model(alias, model)


def seed_models() -> list:
    from django.contrib.auth import get_user_model

    from accounts.models import Role
    from tenants.models import Tenant

    return [Tenant, Role, get_user_model()]


def hosts_seed(alias: str) -> bool:
    """Whether the seed's tables (tenant, roles, users) live on ``alias``."""
    return all(hosts_model(alias, m) for m in seed_models())


def hosts_dbinit(alias: str) -> bool:
    """Whether dbinit's own tables (run history, checksums) live on ``alias``."""
    from .models import InitializationRun

    return hosts_model(alias, InitializationRun)


def home_of_dbinit() -> str:
    """The alias holding dbinit's own tables (``default`` when no router says otherwise)."""
    return next((a for a in aliases() if hosts_dbinit(a) and not mirror_of(a)), "default")


def mirror_of(alias: str) -> str | None:
    return (settings.DATABASES.get(alias, {}).get("TEST") or {}).get("MIRROR")


def primary_of(alias: str) -> str:
    """The alias a person should fix instead of ``alias`` (what it mirrors, else dbinit's home)."""
    return mirror_of(alias) or home_of_dbinit()


def configured_read_only_reason(alias: str) -> str | None:
    """Why the settings make ``alias`` read-only to dbinit, or None (no I/O)."""
    mirror = mirror_of(alias)
    if mirror:
        return f"it mirrors {mirror!r} (TEST MIRROR)"
    if not any(hosts_model(alias, m) for m in _concrete_models()):
        return "the database routers let no model migrate to it"
    return None


def server_read_only_reason(connection) -> str | None:
    """Why the server behind an open ``connection`` refuses writes, or None (one query)."""
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute("SELECT current_setting('default_transaction_read_only'), pg_is_in_recovery()")
            read_only, in_recovery = cursor.fetchone()
            if in_recovery:
                return "the server is a standby in recovery (pg_is_in_recovery())"
            if read_only == "on":
                return "the server is read-only (default_transaction_read_only = on)"
        elif connection.vendor == "sqlite":
            cursor.execute("PRAGMA query_only")
            if cursor.fetchone()[0]:
                return "the connection is read-only (PRAGMA query_only)"
            if "mode=ro" in str(connection.settings_dict.get("NAME", "")):
                return "the file is opened read-only (mode=ro)"
    return None


def read_only_reason(alias: str, *, ask_server=True) -> str | None:
    """Why dbinit must not write to ``alias``, or None; the server is asked only if it answers."""
    if not ask_server:
        return configured_read_only_reason(alias)
    return read_only_answer(alias)[0]


def read_only_answer(alias: str) -> tuple[str | None, bool]:
    """(why dbinit must not write to ``alias`` or None, whether the server itself answered).

    The server is asked only when the settings do not already say so and it can be reached.
    """
    reason = configured_read_only_reason(alias)
    if reason:
        return reason, False
    from . import database as db

    if connections[alias].vendor == "sqlite":
        path = db.sqlite_path(connections[alias].settings_dict)
        if path is not None and not path.exists():
            return None, False  # connecting would create the file
    try:
        connections[alias].ensure_connection()
        return server_read_only_reason(connections[alias]), True
    except DatabaseError:
        return None, False  # unreachable or missing: the command's own steps say so


def refusal(alias: str, command: str, reason: str) -> DbinitError:
    return DbinitError(errors.E074, command=command, alias=alias, reason=reason, primary=primary_of(alias))


def refuse_read_only(alias: str, command: str, *, ask_server=True, step=None) -> None:
    """Raise ``E074`` if ``alias`` is read-only to dbinit."""
    reason = read_only_reason(alias, ask_server=ask_server)
    if reason:
        error = refusal(alias, command, reason)
        error.step = step
        raise error


def writable(alias: str, *, ask_server=False) -> bool:
    """Whether dbinit may write to ``alias`` (by default from the settings alone, no I/O)."""
    return read_only_reason(alias, ask_server=ask_server) is None


def dependency_order(names: list[str]) -> list[str]:
    """``names`` with the alias holding dbinit's and the seed's tables first, then as configured."""
    def rank(alias):
        return (0 if hosts_dbinit(alias) else 1) + (0 if hosts_seed(alias) else 1)

    return sorted(names, key=lambda a: (rank(a), aliases().index(a)))


def startup_aliases(*, strict=True) -> list[str]:
    """The aliases start-up and ``/health/`` cover (``DBINIT_DATABASES``, default all), in order.

    An unknown alias there raises ``E005`` (``strict``) or is left out (the configuration check
    reports it).
    """
    from .configuration import dbinit_databases_error

    error = dbinit_databases_error()
    if error and strict:
        raise error
    configured = getattr(settings, "DBINIT_DATABASES", None) or aliases()
    return dependency_order([a for a in dict.fromkeys(configured) if a in settings.DATABASES])
