"""dbinit's checks in Django's system-check framework.

Configuration checks need no database and run in every ``manage.py check``;
the database checks carry the ``database`` tag, so they run only when asked
(``check --database default``, and ``migrate``), as Django's own do.
Importing this module (from ``DbinitConfig.ready``) registers them and does
no I/O.

``migrate`` runs the database checks and stops at any Error, so here only what
makes migrating unsafe is an Error (:data:`MIGRATE_UNSAFE`, and damage to an
app that still has migrations to apply); damage that ``migrate`` neither
fixes nor trips on (a dropped table of a finished app, a missing seed row) is
a Warning here, and stays an error in ``dbhealth``, start-up and ``/health/``.
"""

from django.core import checks

from . import errors, health
from .errors import DbinitError

_LEVELS = {
    "critical": checks.Critical,
    "error": checks.Error,
    "warning": checks.Warning,
    "info": checks.Info,
}


def to_message(finding, alias):
    return _LEVELS[finding.status](finding.message, hint=finding.hint or None, obj=f"DATABASES[{alias!r}]",
                                   id=finding.id)


# Findings that make running `migrate` unsafe: it would fail half-way, re-run code, or write to a
# file that is not sound. Lost records are warnings elsewhere, errors here: migrate would re-apply them.
MIGRATE_UNSAFE = {e.id for e in (
    errors.E015, errors.E050, errors.E051, errors.E089,  # not a sound, writable SQLite file
    errors.E021, errors.E032, errors.E033, errors.W024, errors.W029,  # history, lost records
)}
# Schema damage: unsafe only where a pending migration of the same app would touch it.
SCHEMA_DAMAGE = {errors.E030.id, errors.E031.id}


def migrate_level(finding, pending_apps) -> str:
    """The level a finding has in the check framework (what `migrate` stops for)."""
    if finding.id in MIGRATE_UNSAFE:
        return "error" if finding.level_number < 40 else finding.status
    if finding.check == "connectivity":
        return finding.status  # migrate cannot run either; say why first
    if finding.id in SCHEMA_DAMAGE and set(finding.context.get("apps", ())) & pending_apps:
        return finding.status
    return "warning" if finding.level_number >= 40 else finding.status


@checks.register("dbinit")
def configuration_checks(app_configs=None, **kwargs):
    """Environment, engine and production settings (no database I/O)."""
    report = health.run("default", only=health.CONFIGURATION_CHECKS)
    return [to_message(f, "default") for f in report.problems("warning")]


@checks.register(checks.Tags.database)
def database_checks(app_configs=None, databases=None, **kwargs):
    """Connectivity, migrations, schema, seed data, engine: only with ``--database``."""
    messages = []
    for alias in databases or ():
        report = health.run(alias, include_config=False, hash_passwords=True)
        for finding in report.problems("warning"):
            if finding.id == errors.E009.id and finding.context.get("vendor") == "sqlite":
                # `migrate` runs these checks and creates the file itself: say so, do not block it.
                finding = health.Finding.problem(finding.check, DbinitError(errors.W009, name=finding.context["name"]))
            finding.status = migrate_level(finding, report.pending_apps)
            messages.append(to_message(finding, alias))
    return messages
