"""The admin's "Database status" page: what ``dbhealth`` says, for staff, in the browser.

The health checks with their ids and hints, the last initialisation runs with each step's
duration, who holds the initialisation lock, and the environment. Served inside the admin
(``admin.site.admin_view``: active staff only, others go to the login page); it reads, never
writes.
"""

from __future__ import annotations

from django.conf import settings
from django.contrib import admin
from django.db import DatabaseError, connections
from django.template.response import TemplateResponse

from . import errors, health
from .configuration import describe_database

RUNS_SHOWN = 10


def database_status(request, alias="default"):
    from .locking import current_holder
    from .models import InitializationRun

    report = health.run(alias)
    runs, holder = [], None
    if any(f.id == errors.I001.id for f in report.findings):  # reachable
        try:
            runs = list(InitializationRun.objects.using(alias).order_by("-id")[:RUNS_SHOWN])
        except DatabaseError:  # not migrated yet: the checks above say so
            runs = []
        try:
            holder = current_holder(connections[alias])
        except DatabaseError:
            holder = None
    database = describe_database(connections[alias].settings_dict, alias)
    environment = [
        ("AISECRETARY_ENV", settings.AISECRETARY_ENV),
        ("DBINIT_STARTUP", settings.DBINIT_STARTUP),
        ("Database", f"{database.vendor} {database.target()}"),  # masked: never a password
        ("DBINIT_CONNECT_TIMEOUT", f"{settings.DBINIT_CONNECT_TIMEOUT:g} s"),
        ("DBINIT_LOCK_TIMEOUT", f"{settings.DBINIT_LOCK_TIMEOUT:g} s"),
        ("DBINIT_LOCK_LEASE", f"{settings.DBINIT_LOCK_LEASE:g} s"),
    ]
    context = {
        **admin.site.each_context(request),
        "title": "Database status",
        "report": report,
        "problems": report.problems("warning"),
        "runs": runs,
        "holder": holder,
        "environment": environment,
    }
    return TemplateResponse(request, "admin/dbinit/status.html", context)
