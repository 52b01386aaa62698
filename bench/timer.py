"""Timing whole processes: start ``manage.py`` children, reap them with ``os.wait4``, compare two sides.

The wall time of a side runs from just before its first process starts to just
after its last one is reaped; ``wait4``'s ``ru_maxrss`` gives each child's peak
resident memory (the figure reported is the largest single child).
:func:`compare` warms each side up once, then alternates A, B, A, B, ... so
that noise on a busy machine hits both sides alike.
"""

from __future__ import annotations

import collections
import os
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MANAGE = [sys.executable, str(ROOT / "manage.py")]


def log(message=""):
    print(message, flush=True)


class CommandFailed(Exception):
    def __init__(self, cmd, code, output_tail, summary=""):
        self.cmd, self.code, self.output_tail, self.summary = cmd, code, output_tail, summary
        super().__init__(f"{short(cmd)} exited {code}{' (' + summary + ')' if summary else ''}")


def child_env(database_url: str, **extra: str) -> dict:
    """The environment a developer's shell would give manage.py, pointed at ``database_url``."""
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("DJANGO_", "DBINIT_", "AISECRETARY_"))
           and k not in ("DATABASE_URL", "PYTHONDONTWRITEBYTECODE")}
    # Templates off unless a comparison measures them (it also names where they go).
    env.update(AISECRETARY_ENV="development", DBINIT_STARTUP="off", DBINIT_TEMPLATES="off",
               DATABASE_URL=database_url)
    env.update(extra)
    return env


def manage(*args: str) -> list[str]:
    return [*MANAGE, *args]


def short(cmd: list[str]) -> str:
    """``manage.py migrate`` rather than the interpreter's and the project's full paths."""
    return " ".join(["manage.py", *cmd[len(MANAGE):]] if cmd[:len(MANAGE)] == MANAGE else cmd)


def _spawn(cmd, env):
    """Start ``cmd``; its stdout and stderr go to temporary files (no pipe to fill up)."""
    out, err = tempfile.TemporaryFile(), tempfile.TemporaryFile()
    proc = subprocess.Popen(cmd, env=env, cwd=ROOT, stdin=subprocess.DEVNULL, stdout=out, stderr=err)
    return proc, (out, err)


def _reap(proc) -> tuple[int, int, float]:
    """Wait for ``proc``; return (exit code, its peak RSS in KiB, its CPU seconds)."""
    _, status, usage = os.wait4(proc.pid, 0)
    proc.returncode = os.waitstatus_to_exitcode(status)
    return proc.returncode, usage.ru_maxrss, usage.ru_utime + usage.ru_stime


def _tail(files, lines=20) -> str:
    """The last lines of stderr (of stdout when stderr is empty); closes both files."""
    texts = []
    for f in files:
        f.seek(0)
        texts.append(f.read().decode("utf-8", "replace").rstrip())
        f.close()
    out, err = texts
    return "\n".join((err or "(stderr empty; stdout:)\n" + out).splitlines()[-lines:])


def _close(files):
    for f in files:
        f.close()


@dataclass
class Timing:
    """One timed unit: wall seconds, the largest child's peak RSS (MiB), CPU seconds of all children."""

    wall: float
    rss: float
    cpu: float = 0.0


def timed(cmds: list[list[str]], env: dict) -> Timing:
    """Run ``cmds`` one after another as one timed unit.

    Raises :class:`CommandFailed` at the first non-zero exit.
    """
    peak_kib, cpu = 0, 0.0
    start = time.perf_counter()
    for cmd in cmds:
        proc, files = _spawn(cmd, env)
        code, rss, used = _reap(proc)
        peak_kib, cpu = max(peak_kib, rss), cpu + used
        if code != 0:
            raise CommandFailed(cmd, code, _tail(files))
        _close(files)
    return Timing(time.perf_counter() - start, peak_kib / 1024, cpu)


def timed_concurrent(cmd: list[str], env: dict, processes: int) -> tuple[Timing, collections.Counter]:
    """Start ``processes`` copies of ``cmd`` at once and wait for all of them.

    Returns (timing, Counter of exit codes); raises :class:`CommandFailed` (after all have
    ended) when any exited non-zero.
    """
    start = time.perf_counter()
    running = [_spawn(cmd, env) for _ in range(processes)]
    reaped = [(*_reap(proc), files) for proc, files in running]
    wall = time.perf_counter() - start
    codes = collections.Counter(code for code, _, _, _ in reaped)
    peak_kib = max(rss for _, rss, _, _ in reaped)
    cpu = sum(used for _, _, used, _ in reaped)
    failed = [(code, files) for code, _, _, files in reaped if code != 0]
    if failed:
        raise CommandFailed(cmd, failed[0][0], _tail(failed[0][1]), summary=f"exit codes {codes_summary(codes)}")
    for *_, files in reaped:
        _close(files)
    return Timing(wall, peak_kib / 1024, cpu), codes


def codes_summary(codes: collections.Counter) -> str:
    return ", ".join(f"{code}×{n}" for code, n in sorted(codes.items()))


def run_untimed(cmd, env):
    """Set-up step outside any timing; fails loudly like a timed command."""
    timed([cmd], env)


# --- one comparison's figures ---------------------------------------------------------
@dataclass
class Result:
    key: str
    title: str
    target: float | None
    target_text: str = ""
    a: list[Timing] = field(default_factory=list)  # one per timed run
    b: list[Timing] = field(default_factory=list)
    error: str = ""  # why the comparison has no figures (failure or skip)
    failed: bool = False
    problems: list[str] = field(default_factory=list)  # a target None comparison is met when empty
    exit_codes: collections.Counter = field(default_factory=collections.Counter)
    detail: str = ""  # shown after the title in the table (e.g. comparison 14's locked counts)
    tallies: dict = field(default_factory=dict)  # a comparison's own per-run figures, for its report
    notes: list[str] = field(default_factory=list)
    # Judged by the median of the paired ratios (sides a few per cent apart; see ``paired``).
    by_pairs: bool = False

    def median(self, side):
        return statistics.median(t.wall for t in side) if side else None

    def peak(self, side):
        return max(t.rss for t in side) if side else None

    @property
    def ratio(self):
        a, b = self.median(self.a), self.median(self.b)
        return a / b if a is not None and b else None

    @property
    def paired(self):
        """The median of A_i / B_i over the back-to-back runs (A then B, a second or so apart).

        The machine's speed drifts over minutes (a shared VM), which moves both medians; a pair
        shares the machine's state of the moment, so the paired ratio keeps a difference of a few
        per cent that the ratio of medians loses in that drift.
        """
        pairs = [a.wall / b.wall for a, b in zip(self.a, self.b, strict=False) if b.wall]
        return statistics.median(pairs) if pairs else None

    @property
    def judged(self):
        """The figure held against the target."""
        return self.paired if self.by_pairs else self.ratio

    @property
    def met(self):
        if self.error or self.judged is None:
            return None
        if self.target is None:
            return not self.problems
        return self.judged <= self.target and not self.problems

    def fail(self, exc: CommandFailed, during=""):
        """Record a failed command: no figures, its output's tail in the notes."""
        self.failed, self.error = True, f"FAILED{' (' + during + ')' if during else ''}: {exc}"
        self.notes.append(f"Comparison {self.key} failed{' in its ' + during if during else ''}: {exc}:\n\n"
                          + indent(exc.output_tail))
        log(f"  {self.error}\n  --- stderr tail ---\n" + indent(exc.output_tail) + "\n  -------------------")


def compare(result: Result, side_a, side_b, runs: int) -> Result:
    """Warm up each side once, then alternate A, B ``runs`` times; each side returns a :class:`Timing`."""
    try:
        for name, side in (("A", side_a), ("B", side_b)):
            t = side()
            log(f"  warm-up {name}: {t.wall:.3f} s, {t.rss:.1f} MiB")
        for i in range(1, runs + 1):
            for name, side, store in (("A", side_a, result.a), ("B", side_b, result.b)):
                t = side()
                store.append(t)
                log(f"  run {i}/{runs} {name}: {t.wall:.3f} s, {t.rss:.1f} MiB")
    except CommandFailed as exc:
        result.fail(exc)
        return result
    spread = lambda side: f"{min(t.wall for t in side):.3f}-{max(t.wall for t in side):.3f}"  # noqa: E731
    log(f"  median A {result.median(result.a):.3f} s (range {spread(result.a)}), "
        f"B {result.median(result.b):.3f} s (range {spread(result.b)}), "
        f"ratio {result.ratio:.2f}, paired {result.paired:.2f}"
        f"{' (judged)' if result.by_pairs else ''} (target {result.target_text})")
    return result


def indent(text, prefix="    "):
    return "\n".join(prefix + line for line in text.splitlines())
