"""dbinit's checks as django-health-check plugins, for the /health/ endpoint."""

import dataclasses

from health_check.backends import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning

from . import health


@dataclasses.dataclass
class DbinitCheck(HealthCheck):
    """Runs a group of dbinit checks; errors make the endpoint fail, warnings are reported."""

    checks: tuple = ("connectivity",)
    label: str = "database"
    alias: str = "default"

    def __repr__(self):
        return f"dbinit:{self.label}"

    def check_status(self):
        report = health.run(self.alias, only=list(self.checks), include_config=False)
        errors = report.problems("error")
        if errors:
            # Messages name the id and what failed; they never carry a password.
            raise ServiceUnavailable("; ".join(f"{f.id} {f.message}" for f in errors))
        warnings = report.problems("warning")
        if warnings:
            raise ServiceWarning("; ".join(f"{f.id} {f.message}" for f in warnings))


# Not "engine": its SQLite quick_check reads the whole file, too much for every probe.
GROUPS = (("database", ("connectivity",)), ("migrations", ("migrations", "schema")), ("seed", ("seed",)))


def health_checks() -> list:
    """One line per group and alias of DBINIT_DATABASES (default: all); a replica only as reachable.

    Reads the settings only (no database I/O), when the URLconf is loaded.
    """
    from . import routing

    checks = []
    for alias in routing.startup_aliases(strict=False):
        groups = GROUPS if routing.writable(alias) else GROUPS[:1]
        for label, names in groups:
            if alias != "default":
                label = f"{label}:{alias}"
            checks.append(("dbinit.health_backend.DbinitCheck", {"checks": names, "label": label, "alias": alias}))
    return checks
