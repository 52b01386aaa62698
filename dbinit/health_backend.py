"""dbinit's checks as django-health-check plugins, and the /health/ view that shows them."""

import dataclasses
import threading
from contextlib import contextmanager

from django.http import HttpResponse, JsonResponse
from django.utils.decorators import method_decorator
from django.views.decorators.cache import never_cache
from health_check.backends import HealthCheck
from health_check.exceptions import ServiceUnavailable, ServiceWarning
from health_check.views import HealthCheckView

from . import health
from .access import may_see_details


@dataclasses.dataclass
class DbinitCheck(HealthCheck):
    """Runs a group of dbinit checks; errors make the endpoint fail, warnings are reported."""

    checks: tuple = ("connectivity",)
    label: str = "database"
    alias: str = "default"

    def __repr__(self):
        return f"dbinit:{self.label}"

    def check_status(self):
        # One report per request feeds every group (the view's); outside the view, this group's checks.
        report = _request_report(self.alias) or health.run(self.alias, only=list(self.checks),
                                                           trust_fingerprint=True)
        # A database that cannot be reached fails every group that needs it (not the configuration's).
        needs_database = any(c not in health.CONFIGURATION_CHECKS for c in self.checks)
        findings = [f for f in report.findings
                    if f.check in self.checks or (needs_database and f.check == "connectivity")]
        report = health.HealthReport(database={}, findings=findings)
        errors = report.problems("error")
        if errors:
            # Messages name the id and what failed; they never carry a password, and only
            # staff or the token holder see them (DbinitHealthView).
            raise ServiceUnavailable("; ".join(f"{f.id} {f.message}" for f in errors))
        warnings = report.problems("warning")
        if warnings:
            raise ServiceWarning("; ".join(f"{f.id} {f.message}" for f in warnings))


# Not "engine": its SQLite quick_check reads the whole file, too much for every probe.
# "replication" says nothing (and queries nothing) on a writable alias; on a replica it reports
# the lag, a warning over DBINIT_REPLICA_MAX_LAG (the endpoint stays at 200).
GROUPS = (("database", ("connectivity", "replication")), ("migrations", ("migrations", "schema")),
          ("seed", ("seed",)))
# The production rules on the settings (no I/O): a misconfigured server reports unhealthy.
CONFIGURATION_GROUP = ("configuration", ("configuration",))


def health_checks() -> list:
    """The configuration line, then one line per group and alias of DBINIT_DATABASES (default: all);
    a replica only as reachable, with its replication lag.

    Reads the settings only (no database I/O), when the URLconf is loaded.
    """
    from . import routing

    label, names = CONFIGURATION_GROUP
    checks = [("dbinit.health_backend.DbinitCheck", {"checks": names, "label": label, "alias": "default"})]
    for alias in routing.startup_aliases(strict=False):
        groups = GROUPS if routing.writable(alias) else GROUPS[:1]
        for label, names in groups:
            if alias != "default":
                label = f"{label}:{alias}"
            checks.append(("dbinit.health_backend.DbinitCheck", {"checks": names, "label": label, "alias": alias}))
    return checks


# One health run per request and alias for every group (one connection check, one catalogue
# read, the configuration's findings as this process judged them) instead of one per group: the
# probe's cost is what a burst of anonymous requests can make the server spend. Readiness: a
# migration set as last verified needs no migration graph (dbinit.fingerprint).
_current = threading.local()


@contextmanager
def one_report_per_request():
    _current.reports = {}
    try:
        yield
    finally:
        _current.reports = None


def _request_report(alias):
    reports = getattr(_current, "reports", None)
    if reports is None:
        return None
    if alias not in reports:
        names = [c for _, group in (CONFIGURATION_GROUP, *GROUPS) for c in group]
        reports[alias] = health.run(alias, only=names, trust_fingerprint=True)
    return reports[alias]


class DbinitHealthView(HealthCheckView):
    """django-health-check's view; anonymous clients get the status and ok/fail per check only."""

    @method_decorator(never_cache)
    def get(self, request, *args, **kwargs):
        with one_report_per_request():
            return self._get(request, *args, **kwargs)

    def _get(self, request, *args, **kwargs):
        if may_see_details(request):
            return super().get(request, *args, **kwargs)
        failed = bool(self.check(kwargs.get("subset")))
        plugins = self.filter_plugins(subset=kwargs.get("subset"))
        # Warnings keep the endpoint at 200, so they read "ok" here too.
        checks = {label: "fail" if _failed(p) else "ok" for label, p in plugins.items()}
        status = "fail" if failed else "ok"
        code = 500 if failed else 200
        accept = request.headers.get("accept", "*/*")
        if request.GET.get("format") == "json" or ("json" in accept and "html" not in accept):
            return JsonResponse({"status": status, "checks": checks}, status=code)
        text = f"status: {status}\n" + "".join(f"{label}: {state}\n" for label, state in checks.items())
        return HttpResponse(text, status=code, content_type="text/plain; charset=utf-8")


def _failed(plugin) -> bool:
    return any(not isinstance(e, ServiceWarning) for e in plugin.errors)
