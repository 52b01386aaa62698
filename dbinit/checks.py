"""dbinit's checks in Django's system-check framework.

Configuration checks need no database and run in every ``manage.py check``;
the database checks carry the ``database`` tag, so they run only when asked
(``check --database default``, and ``migrate``), as Django's own do.
Importing this module (from ``DbinitConfig.ready``) registers them and does
no I/O.
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
        report = health.run(alias, include_config=False)
        for finding in report.problems("warning"):
            if finding.id == errors.E009.id and finding.context.get("vendor") == "sqlite":
                # `migrate` runs these checks and creates the file itself: say so, do not block it.
                finding = health.Finding.problem(finding.check, DbinitError(errors.W009, name=finding.context["name"]))
            messages.append(to_message(finding, alias))
    return messages
