"""The history of initialisation runs (``dbinit_initializationrun``): recording and reading it.

Every initdb and every server start-up that initialises records one run with
its steps; the newest :data:`HISTORY_KEPT` are kept. A missing history table
(a database migrated by hand, or not yet migrated) reads as "no run recorded"
and is never a reason to fail a run.
"""

from __future__ import annotations

import logging
import os
import socket
from datetime import UTC, datetime

from django.db import DatabaseError, Error, connections, transaction

logger = logging.getLogger("dbinit")

HISTORY_KEPT = 500
COMPLETE_OUTCOMES = ("ok", "warning")


def last_run(alias="default"):
    """The newest recorded run, or None (also when the history table is missing)."""
    from .models import InitializationRun

    try:
        return InitializationRun.objects.using(alias).order_by("-id").first()
    except DatabaseError:  # no history table yet
        return None


def last_run_complete(alias="default") -> bool:
    """Whether the last recorded initialisation of ``alias`` finished (ok or with warnings)."""
    from .models import InitializationRun

    try:  # the outcome alone: every no-op initdb asks, the steps' JSON is not needed
        outcome = InitializationRun.objects.using(alias).order_by("-id").values_list("outcome", flat=True).first()
    except DatabaseError:  # no history table yet
        return False
    return outcome in COMPLETE_OUTCOMES


def record_run(alias, result, started, trigger):
    """Record ``result`` (an InitializationResult) as a run; trim the history to HISTORY_KEPT runs.

    Only on an alias where the routers put dbinit's tables (an analytics alias keeps none).
    """
    from .routing import hosts_dbinit

    if not hosts_dbinit(alias):
        return
    error = result.error
    try:
        with transaction.atomic(using=alias):
            _record(alias, result, started, trigger, error)
    except Error as exc:  # e.g. the dbinit table is not there yet, or the connection died; never fail the run for it
        logger.debug("Initialisation run not recorded: %s", exc)


def _record(alias, result, started, trigger, error):
    """Insert the run and trim the history, in the caller's transaction."""
    from .models import InitializationRun
    from .results import FAILED

    connection = connections[alias]
    if connection.vendor == "postgresql":
        # Bookkeeping: visible to every session at commit, without waiting for the WAL flush
        # (every no-op initdb and worker start pays that wait otherwise). A crash in the next
        # few hundred ms may lose the row; the next run then finds the previous outcome and,
        # if that was not complete, takes the slow path: never a wrong "done".
        with connection.cursor() as cursor:
            cursor.execute("SET LOCAL synchronous_commit TO OFF")
    run = InitializationRun.objects.using(alias).create(
        started_at=started,
        finished_at=datetime.now(UTC),
        host=socket.gethostname()[:255],
        pid=os.getpid(),
        trigger=trigger,
        outcome=FAILED if error else result.status,
        error_code=error.code if error else "",
        steps=[{"name": s.name, "status": s.status, "duration_ms": round(s.duration_ms, 1),
                **({"error": s.error.code} if s.error else {})} for s in result.steps],
    )
    # Every worker start adds a run: keep the newest HISTORY_KEPT (a primary-key range delete,
    # once there can be anything to delete).
    if run.id > HISTORY_KEPT:
        InitializationRun.objects.using(alias).filter(id__lte=run.id - HISTORY_KEPT).delete()
