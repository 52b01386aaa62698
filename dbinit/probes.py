"""Kubernetes-style probes: ``/health/live/``, ``/health/ready/``, ``/health/startup/``.

* live: the process answers HTTP; never touches the database (a database outage must not
  make Kubernetes restart every pod).
* ready: :func:`dbinit.readiness.check`; 200 when this release may serve, 503 otherwise.
* startup: whether the start-up step (``DBINIT_STARTUP``) finished in this process.

Anonymous clients get the status and each check's ok/fail; ids, messages and hints only
when :func:`dbinit.access.may_see_details` allows it. Each probe does a fixed amount of work.
"""

from __future__ import annotations

from django.conf import settings
from django.http import JsonResponse
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_safe

from . import errors, readiness, startup
from .access import may_see_details


def _answer(ok: bool, body: dict) -> JsonResponse:
    return JsonResponse(body, status=200 if ok else 503)


@never_cache
@require_safe
def live(request):
    return JsonResponse({"status": "ok"})


@never_cache
@require_safe
def ready(request):
    result = readiness.check("default")
    return _answer(result.ready, result.as_dict(details=may_see_details(request)))


@never_cache
@require_safe
def startup_probe(request):
    finished = startup.finished()
    body = {"status": "ok" if finished else "fail"}
    if may_see_details(request):
        body["mode"] = settings.DBINIT_STARTUP
        body["id"] = errors.I014.id if finished else None
    return _answer(finished, body)
