"""Start-up initialisation for the servers (runserver, WSGI, ASGI), per ``DBINIT_STARTUP``.

* ``init``: run initdb's steps (migrate, seed, verify) under the cross-process lock.
* ``check``: verify only: connect, no pending migrations, schema and seed present.
* ``off``: nothing.

Critical failures stop the start with the error's id, message and resolution
(``dbinit.C001``/``C002`` naming the underlying id) and a non-zero exit, so no
server half-starts; warnings are logged and the server starts. Nothing here
runs at import time: the servers call :func:`run_or_exit` explicitly.
"""

from __future__ import annotations

import logging
import sys
import time

from django.conf import settings

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

# Aliases already brought up in this process: runserver runs the step, then loads
# aisecretary.wsgi, which must not run it a second time.
_completed: set[str] = set()


def run(alias=None, server="wsgi") -> None:
    """Run the configured start-up mode on ``alias``, or on every alias of ``DBINIT_DATABASES``
    (default: all) in dependency order; raise a critical DbinitError if the server must not start."""
    from . import routing
    from .configuration import production_problems

    # Settings only, no database: refused in every mode, "off" included.
    problems = production_problems(settings)
    if problems:
        raise DbinitError(errors.C004, reason="; ".join(f"{p.code} {p.message} To fix: {p.hint}" for p in problems))
    mode = settings.DBINIT_STARTUP
    if mode == "off":
        logger.debug("Start-up initialisation off (DBINIT_STARTUP=off)")
        return
    todo = [a for a in ([alias] if alias else routing.startup_aliases()) if a not in _completed]
    if not todo:
        return
    start = time.perf_counter()
    for name in todo:
        began = time.perf_counter()
        # (why not to write here, whether the server answered): the checks below reuse the
        # server's answer instead of asking it again.
        answer = routing.read_only_answer(name)
        if answer[0]:
            # A replica (declared, or a read-only server): reachability and lag only.
            what = f"reachable (read-only, {_reachable(name, answer)})"
        elif mode == "init":
            _init(name, server)
            what = "initialised"
        else:
            _check(name, server, answer)
            what = "checked"
        _completed.add(name)
        logger.info("Database %s %s in %.0f ms", name, what, (time.perf_counter() - began) * 1000)
    logger.info("Start-up (%s, DBINIT_STARTUP=%s) ready in %.0f ms", server, mode, (time.perf_counter() - start) * 1000)


def finished(alias=None) -> bool:
    """Whether the start-up step finished in this process (or in the arbiter it was forked from),
    for ``alias`` or for every alias start-up covers."""
    from . import routing

    return settings.DBINIT_STARTUP == "off" or all(a in _completed for a in ([alias] if alias else
                                                                            routing.startup_aliases()))


def _reachable(alias, answer) -> str:
    """Connect to a read-only alias and measure its lag; return the lag for the result line.

    A lagging replica (``W074``) is logged and the server starts: its reads are stale, not
    broken, and the primary may be catching it up.
    """
    from django.db import connections

    from . import health

    report = health.run(alias, only=["connectivity", "replication"], include_config=False,
                        connect_timeout=settings.DBINIT_CONNECT_TIMEOUT, read_only_answer=answer)
    problems = report.problems("error")
    if problems:
        raise _critical(errors.C001, problems[0].id, problems[0].message, problems[0].hint)
    for f in report.problems("warning"):
        logger.warning("%s %s (start-up continues)", f.id, f.message)
    connections[alias].close()
    lag = next((f.context["lag"] for f in report.findings if f.check == "replication" and "lag" in f.context), None)
    return f"lag {lag}" if lag else "no lag to measure"


def _critical(code, problem_id, message, hint) -> DbinitError:
    return DbinitError(code, reason=f"{problem_id} {message} To fix: {hint}")


def _init(alias, server):
    from django.db import connections

    from .initializer import initialize

    # No console to show a generated password on: in production an admin created here gets an
    # unusable password (set it with changepassword); elsewhere the configured one is used.
    result = initialize(alias, trigger=f"startup:{server}", generate_password=False)
    # Give the connection back: behind a session-mode pooler, a start-up connection kept open
    # by every worker starves the pool before the first request.
    connections[alias].close()
    for step in result.steps:
        for warning in step.warnings:
            logger.warning("%s %s (start-up continues)", warning.code, warning.message)
    if result.error:
        error = result.error
        if error.level == "critical":  # already says why the server must not start (C003)
            raise error
        raise _critical(errors.C001, error.code, error.message, error.hint)


# Warnings that still make a start-up check fail: the code expects a schema the database lacks.
BLOCKING_WARNINGS = {errors.W020.id, errors.W024.id, errors.W029.id}


def _check(alias, server, answer):
    from django.db import connections

    from . import health
    from .configuration import validate_configuration

    problems = validate_configuration(alias, seed=False)  # check mode seeds nothing
    if problems:
        raise _critical(errors.C001, problems[0].code, problems[0].message, problems[0].hint)
    # One run, one migration loader; connecting waits up to DBINIT_CONNECT_TIMEOUT for a
    # database that is still starting.
    report = health.run(alias, only=["migrations", "schema", "seed"], include_config=False,
                        connect_timeout=settings.DBINIT_CONNECT_TIMEOUT, hash_passwords=True,
                        trust_fingerprint=True, read_only_answer=answer)
    for name in ("connectivity", "migrations", "schema", "seed"):
        findings = [f for f in report.findings if f.check == name]
        blocking = [f for f in findings if f.level_number >= 40 or f.id in BLOCKING_WARNINGS]
        for f in findings:
            if f.level_number >= 30 and f not in blocking:
                logger.warning("%s %s (start-up continues)", f.id, f.message)
        logger.info("Step %s %s in %.0f ms", name, "failed" if blocking else "ok",
                    sum(f.duration_ms for f in findings))
        if blocking:
            first = blocking[0]
            if first.status == "critical":  # already says why the server must not start (C003)
                raise DbinitError(first.id, **first.context)
            raise _critical(errors.C001 if name == "connectivity" else errors.C002, first.id, first.message, first.hint)
    connections[alias].close()


# gunicorn's WORKER_BOOT_ERROR: its arbiter halts instead of respawning the worker forever.
SERVER_EXIT_CODE = 3


def run_or_exit(alias=None, server="wsgi", exit_code=SERVER_EXIT_CODE) -> None:
    """:func:`run`, turning a critical failure into a message on stderr and a non-zero exit.

    WSGI/ASGI workers exit with 3, which gunicorn reads as "worker failed to boot" and stops
    the whole server (no half-started fleet); runserver uses 1 (3 would make its autoreloader
    restart the child).
    """
    try:
        run(alias, server)
    except DbinitError as exc:
        logger.critical("%s %s", exc.code, exc.message)
        sys.stderr.write(exc.render())
        sys.stderr.flush()
        raise SystemExit(exit_code) from None


def setup_or_exit() -> None:
    """``django.setup()``, rendering a configuration error (bad environment value) without a traceback."""
    import django

    from .errors import ConfigurationError

    try:
        django.setup(set_prefix=False)
    except ConfigurationError as exc:
        sys.stderr.write(exc.render())
        sys.stderr.flush()
        raise SystemExit(2) from None


def run_in_arbiter(server="gunicorn") -> None:
    """The start-up step in a pre-fork server's master, before it forks (gunicorn's ``on_starting``).

    Every connection is closed afterwards, so no worker inherits a socket; the workers find
    the alias in ``_completed`` (inherited with the fork) and skip the step.
    """
    from django.db import connections

    setup_or_exit()
    try:
        run_or_exit(server=server)
    finally:
        connections.close_all()


def wsgi_application():
    """The WSGI application, built only after start-up initialisation succeeded."""
    setup_or_exit()
    run_or_exit(server="wsgi")
    from django.core.handlers.wsgi import WSGIHandler

    return WSGIHandler()


def _outside_event_loop(function, *args, **kwargs):
    """Call ``function`` here, or in a helper thread when this thread runs an event loop.

    uvicorn imports the ASGI application inside its running loop, where Django refuses
    synchronous database work (SynchronousOnlyOperation). Start-up must finish before the
    application exists anyway, so blocking the loop for it is what we want.
    """
    import asyncio
    from concurrent.futures import ThreadPoolExecutor

    try:
        asyncio.get_running_loop()
    except RuntimeError:
        return function(*args, **kwargs)

    def in_thread():
        from django.db import connections

        try:
            return function(*args, **kwargs)
        finally:
            connections.close_all()  # the helper thread's own connections

    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="dbinit-startup") as pool:
        return pool.submit(in_thread).result()  # re-raises SystemExit from a failed start


def asgi_application():
    """The ASGI application, built only after start-up initialisation succeeded."""
    setup_or_exit()
    _outside_event_loop(run_or_exit, server="asgi")
    from django.core.handlers.asgi import ASGIHandler

    return ASGIHandler()
