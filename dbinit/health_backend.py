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

    def __repr__(self):
        return f"dbinit:{self.label}"

    def check_status(self):
        only = [c for c in self.checks if c not in health.CONFIGURATION_CHECKS]
        if only:
            report = _request_report() or health.run("default", only=only, include_config=False)
            # A database that cannot be reached fails every group that needs it.
            findings = [f for f in report.findings if f.check in self.checks or f.check == "connectivity"]
        else:
            findings = health.run("default", only=list(self.checks)).findings
        report = health.HealthReport(database={}, findings=findings)
        errors = report.problems("error")
        if errors:
            # Messages name the id and what failed; they never carry a password, and only
            # staff or the token holder see them (DbinitHealthView).
            raise ServiceUnavailable("; ".join(f"{f.id} {f.message}" for f in errors))
        warnings = report.problems("warning")
        if warnings:
            raise ServiceWarning("; ".join(f"{f.id} {f.message}" for f in warnings))


# One health run per request for every database group (one connection check, one catalogue
# read, one migration loader) instead of one per group: the probe's cost is what a burst of
# anonymous requests can make the server spend.
_current = threading.local()


@contextmanager
def one_report_per_request():
    _current.active, _current.report = True, None
    try:
        yield
    finally:
        _current.active, _current.report = False, None


def _request_report():
    if not getattr(_current, "active", False):
        return None
    if _current.report is None:
        names = [c for _, options in HEALTH_CHECKS for c in options["checks"] if c not in health.CONFIGURATION_CHECKS]
        _current.report = health.run("default", only=list(dict.fromkeys(names)), include_config=False)
    return _current.report


HEALTH_CHECKS = [
    # Production rules on the settings (no I/O): a misconfigured server reports unhealthy.
    ("dbinit.health_backend.DbinitCheck", {"checks": ("configuration",), "label": "configuration"}),
    # Not "engine": its SQLite quick_check reads the whole file, too much for every probe.
    ("dbinit.health_backend.DbinitCheck", {"checks": ("connectivity",), "label": "database"}),
    ("dbinit.health_backend.DbinitCheck", {"checks": ("migrations", "schema"), "label": "migrations"}),
    ("dbinit.health_backend.DbinitCheck", {"checks": ("seed",), "label": "seed"}),
]


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
