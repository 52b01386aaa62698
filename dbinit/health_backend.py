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

    def __repr__(self):
        return f"dbinit:{self.label}"

    def check_status(self):
        # Readiness: a migration set as last verified needs no migration graph (dbinit.fingerprint).
        report = health.run("default", only=list(self.checks), include_config=False, trust_fingerprint=True)
        errors = report.problems("error")
        if errors:
            # Messages name the id and what failed; they never carry a password.
            raise ServiceUnavailable("; ".join(f"{f.id} {f.message}" for f in errors))
        warnings = report.problems("warning")
        if warnings:
            raise ServiceWarning("; ".join(f"{f.id} {f.message}" for f in warnings))


HEALTH_CHECKS = [
    # Not "engine": its SQLite quick_check reads the whole file, too much for every probe.
    ("dbinit.health_backend.DbinitCheck", {"checks": ("connectivity",), "label": "database"}),
    ("dbinit.health_backend.DbinitCheck", {"checks": ("migrations", "schema"), "label": "migrations"}),
    ("dbinit.health_backend.DbinitCheck", {"checks": ("seed",), "label": "seed"}),
]
