"""gunicorn configuration: dbinit's start-up step once per server, in the arbiter, before any worker forks.

gunicorn reads this file from the working directory (or ``-c gunicorn.conf.py``). ``on_starting``
runs the configured start-up mode (``DBINIT_STARTUP``) in the arbiter, before it binds the
port or forks: a failure ends the server there, with one message carrying the dbinit id and a
non-zero exit, and no worker ever exists. Every connection the step opened is closed before
the fork; the workers inherit "start-up done" (``dbinit.startup`` remembers it) and only open
their own connections when the first request comes.

``post_fork`` makes a booting worker die with its arbiter: gunicorn 27's arbiter can exit
inside its own halt when two workers fail to boot at once (``HaltServer`` raised while it
stops the others), and the workers still booting would otherwise live on, keeping the
listening socket. Once a worker has booted, gunicorn's own parent check takes over.
"""

import os
import sys

wsgi_app = "aisecretary.wsgi:application"

_PR_SET_PDEATHSIG = 1


def _parent_death_signal(signal_number: int) -> None:
    """Linux: have the kernel send ``signal_number`` to this process when its parent exits."""
    if not sys.platform.startswith("linux"):
        return
    import ctypes

    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(_PR_SET_PDEATHSIG, signal_number, 0, 0, 0)


def on_starting(server):
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "aisecretary.settings")
    from dbinit.startup import run_in_arbiter

    try:
        run_in_arbiter()
    except SystemExit:
        if server.pidfile is not None:  # created just before this hook; no server will own it
            server.pidfile.unlink()
        raise


def post_fork(server, worker):
    import signal

    # SIGKILL, not SIGTERM: a worker still importing the application ignores SIGTERM until
    # it has booted (gunicorn's handler only flags it), and its arbiter is gone.
    _parent_death_signal(signal.SIGKILL)
    if os.getppid() != server.pid:  # the arbiter died between fork and prctl
        os._exit(1)


def post_worker_init(worker):
    _parent_death_signal(0)  # booted: gunicorn's own "parent changed" check shuts it down gracefully
