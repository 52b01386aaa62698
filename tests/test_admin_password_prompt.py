"""Production initdb asks for the admin's password in a terminal, with createsuperuser's rules.

``manage.py initdb`` runs in a real pseudo-terminal (``os.openpty``; the terminal is made the
process's controlling terminal, so ``getpass`` reads it as it reads a person's): a weak password
is refused with AUTH_PASSWORD_VALIDATORS' own message, a strong one typed twice is the admin's,
and no password is ever echoed or printed.
"""

import json
import os
import select
import subprocess
import sys
import time

import pytest

from tests.support.databases import ROOT, python, subprocess_env
from tests.support.production import production

ADMIN = "admin@ai-secretary.com"
WEAK = "qwertyuiop"  # in Django's list of common passwords
STRONG = "Prompted-Str0ng-Pw-58"
PROMPT = f"Password for the admin {ADMIN}"
# Run by the child before manage.py: the pseudo-terminal becomes the controlling terminal of its
# new session (start_new_session), as a login shell's terminal is, and Ctrl-C interrupts as it does
# there: a test run started in the background of a non-interactive shell (`make test &`) inherits
# SIGINT ignored, and Python leaves an ignored SIGINT ignored, so Ctrl-C would do nothing.
TAKE_TERMINAL = ("import fcntl, os, signal, sys, termios; fcntl.ioctl(0, termios.TIOCSCTTY, 0); "
                 "signal.signal(signal.SIGINT, signal.SIG_DFL); "
                 "os.execv(sys.executable, [sys.executable, *sys.argv[1:]])")


class Terminal:
    """A process on the slave side of a pseudo-terminal; the test types on the master side."""

    def __init__(self, args, env):
        self.master, slave = os.openpty()
        self.proc = subprocess.Popen([sys.executable, "-c", TAKE_TERMINAL, *args], cwd=ROOT, env=env,
                                     stdin=slave, stdout=slave, stderr=slave, start_new_session=True)
        os.close(slave)
        self.output = ""
        self.seen = 0  # how much of the output read_until has matched

    def read_until(self, text, timeout=120.0) -> str:
        """What the terminal shows from the last match up to and including the next ``text``."""
        deadline = time.monotonic() + timeout
        while text not in self.output[self.seen:]:
            if not self._read(deadline - time.monotonic()):
                raise AssertionError(f"{text!r} never shown; the terminal showed:\n{self.output}")
        end = self.output.index(text, self.seen) + len(text)
        shown, self.seen = self.output[self.seen:end], end
        return shown

    def type(self, line):
        os.write(self.master, (line + "\n").encode())

    def finish(self, timeout=120.0) -> int:
        deadline = time.monotonic() + timeout
        while self._read(deadline - time.monotonic()):
            pass
        os.close(self.master)
        return self.proc.wait(timeout=max(deadline - time.monotonic(), 1))

    def _read(self, timeout) -> bool:
        if timeout <= 0 or not select.select([self.master], [], [], timeout)[0]:
            return False
        try:
            chunk = os.read(self.master, 4096)
        except OSError:  # EIO: the child closed the terminal (it exited)
            return False
        self.output += chunk.decode("utf-8", "replace")
        return bool(chunk)


def production_initdb(db) -> Terminal:
    return Terminal(["manage.py", "initdb"], subprocess_env(db, production(DBINIT_ADMIN_PASSWORD=None)))


def logs_in(db, password) -> bool:
    proc = python("tests/probes/check_password.py", ADMIN, db=db, env=production(), input=password)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)["matches"]


def test_production_initdb_asks_for_the_admin_password_with_the_validators(fresh_db):
    terminal = production_initdb(fresh_db)
    terminal.read_until(PROMPT)
    terminal.type(WEAK)
    refused = terminal.read_until(PROMPT)  # asked again
    assert "dbinit.E086" in refused and "This password is too common." in refused
    terminal.type("admin123")
    refused = terminal.read_until(PROMPT)
    # Said about what was typed, not about a setting nobody set.
    assert "dbinit.E006" in refused and "typed at initdb's prompt" in refused
    terminal.type(STRONG)
    terminal.read_until("Again: ")
    terminal.type(STRONG + "-typo")
    assert "The passwords did not match." in terminal.read_until(PROMPT)
    terminal.type(STRONG)
    terminal.read_until("Again: ")
    terminal.type(STRONG)
    code = terminal.finish()
    assert code == 0, terminal.output
    assert "Database initialised" in terminal.output
    # Typed with the echo off, and never printed back.
    for password in (WEAK, "admin123", STRONG):
        assert password not in terminal.output
    assert "Traceback" not in terminal.output
    assert logs_in(fresh_db, STRONG)


def test_no_prompt_when_the_admin_exists(initialized_db):
    # The seed never changes an existing admin's password: asking for one would be a password
    # typed for nothing (the admin keeps the old one).
    changed = python("tests/probes/set_password.py", ADMIN, STRONG, db=initialized_db)
    assert changed.returncode == 0, changed.stderr
    terminal = production_initdb(initialized_db)
    code = terminal.finish()
    assert code == 0, terminal.output
    assert "Password for the admin" not in terminal.output
    assert "nothing to do" in terminal.output
    assert logs_in(initialized_db, STRONG)


@pytest.mark.parametrize("key", ["\x04", "\x03"], ids=["ctrl-d", "ctrl-c"])
def test_giving_up_at_the_prompt_changes_nothing(fresh_db, key):
    terminal = production_initdb(fresh_db)
    terminal.read_until(PROMPT)
    os.write(terminal.master, key.encode())  # at the start of a line: end of input / interrupt
    code = terminal.finish()
    assert code == 1, terminal.output
    assert "dbinit.E071" in terminal.output and "initdb was not confirmed" in terminal.output
    assert "Traceback" not in terminal.output
    assert not fresh_db.exists()
