"""dbinit's checks as django-health-check plugins, and the /health/ view that shows them."""

import dataclasses

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
        report = health.run("default", only=only or list(self.checks), include_config=not only)
        errors = report.problems("error")
        if errors:
            # Messages name the id and what failed; they never carry a password, and only
            # staff or the token holder see them (DbinitHealthView).
            raise ServiceUnavailable("; ".join(f"{f.id} {f.message}" for f in errors))
        warnings = report.problems("warning")
        if warnings:
            raise ServiceWarning("; ".join(f"{f.id} {f.message}" for f in warnings))


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
