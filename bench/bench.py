"""Whole-process benchmarks of dbinit's commands against what a user would run instead.

Method
------
Every measurement is a whole ``python manage.py ...`` process (or a chain of
them), started with ``subprocess.Popen`` and reaped with ``os.wait4``: the wall
time runs from just before the first process starts to just after the last
one is reaped, and ``wait4``'s ``ru_maxrss`` gives each child's peak resident
memory (the figure reported is the largest single child).

For each comparison, A and B are run once each untimed (warm-up: the OS file
cache, ``.pyc`` files, the server's caches), then alternately A, B, A, B, ...
``--runs`` times each (three times that for the comparisons marked ``fine``, whose
sides are a few per cent apart), so that noise on a busy machine hits both sides alike.
The report gives the median wall time of each side, the ratio of the medians
A/B, the paired ratio (the median of A_i/B_i over the back-to-back runs: a shared
VM's speed drifts over minutes, and a pair shares the moment's speed), whether the
target is met (judged on the paired ratio for the ``fine`` comparisons, on the ratio
of the medians for the others), and the peak RSS over the timed runs.

Every run gets a fresh database prepared outside the timed region: a new
folder for a missing SQLite file, a copy of an initialised SQLite template, or
a new PostgreSQL database (``CREATE DATABASE ... TEMPLATE ...``) that is
dropped right after the run. The children get the environment a developer
would: ``AISECRETARY_ENV=development``, ``DBINIT_STARTUP=off``, the run's
``DATABASE_URL``, no ``DJANGO_SETTINGS_MODULE`` and no
``PYTHONDONTWRITEBYTECODE`` (bytecode caches work, as they do for a user).

The PostgreSQL database with 1,000,000 users (comparison 4) is built once and
kept across runs as ``dbinit_bench_1m``; every other scratch database is
dropped at the end. Without a PostgreSQL server, the comparisons that need
one are skipped.

Exit status: 0 when every command succeeded (whether or not the targets are
met: this is a report, not a test), 1 when a command exited non-zero (its
output's tail is printed).

Layout: ``bench/timer.py`` runs and times processes, ``bench/comparisons.py`` is
the table of comparisons (add one there: a row and a function), this file
parses the options, runs the rows and renders the report.

Usage (from the repository root): ``make bench`` or
``.venv/bin/python bench/bench.py [--quick] [--runs N] [--only 1,3]``.
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import sqlite3
import sys
import time
from datetime import UTC, datetime

from comparisons import COMPARISONS, DEFAULT_POSTGRES_URL, FINE_RUNS, Context
from timer import ROOT, CommandFailed, Result, compare, log

RESULTS = ROOT / "bench" / "results" / "latest.md"


# --- report ------------------------------------------------------------------------------
COLUMNS = ["comparison", "A median (s)", "B median (s)", "ratio", "paired", "target", "met",
           "A peak RSS (MiB)", "B peak RSS (MiB)"]


def table(results: list[Result]) -> str:
    def fmt(value, spec):
        return "" if value is None else format(value, spec)

    rows = []
    for r in results:
        if r.error:
            rows.append([f"{r.key}. {r.title}", "", "", "", "", r.target_text, r.error.split(":")[0], "", ""])
            continue
        title = f"{r.key}. {r.title}" + (f" [{r.detail}]" if r.detail else "")
        rows.append([title, fmt(r.median(r.a), ".3f"), fmt(r.median(r.b), ".3f"),
                     fmt(r.ratio, ".2f"), fmt(r.paired, ".2f") + (" (judged)" if r.by_pairs else ""),
                     r.target_text, "yes" if r.met else "no",
                     fmt(r.peak(r.a), ".1f"), fmt(r.peak(r.b), ".1f")])
    widths = [max(len(COLUMNS[i]), *(len(row[i]) for row in rows)) for i in range(len(COLUMNS))]
    line = lambda cells: "| " + " | ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)) + " |"  # noqa: E731
    return "\n".join([line(COLUMNS), "|" + "|".join("-" * (w + 2) for w in widths) + "|", *map(line, rows)])


def _keys(rows) -> str:
    """``2, 6, 7 and 8``: the keys of ``rows``."""
    keys = [c.key for c in rows]
    return ", ".join(keys[:-1]) + " and " + keys[-1] if len(keys) > 1 else "".join(keys)


def machine(pg_version: str | None, args) -> str:
    fine = _keys(c for c in COMPARISONS if c.fine)
    concurrent = _keys(c for c in COMPARISONS if c.concurrent)
    return (f"Machine: nproc {os.cpu_count()}, {platform.machine()}, Python {platform.python_version()}, "
            f"SQLite {sqlite3.sqlite_version}, PostgreSQL {pg_version or 'not used'}, "
            f"{datetime.now(UTC):%Y-%m-%d %H:%M UTC}; {args.runs} runs per side "
            f"({args.runs * FINE_RUNS} for comparisons {fine}, {args.concurrent_runs} for {concurrent}), "
            "medians of wall time; \"paired\": the median of A_i/B_i over back-to-back runs, the figure "
            f"judged for comparisons {fine}.")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=7, help="timed runs of each side (default 7)")
    parser.add_argument("--quick", action="store_true", help="3 runs of each side")
    parser.add_argument("--concurrent-runs", type=int, default=None,
                        help=f"timed runs of each side of comparisons "
                             f"{_keys(c for c in COMPARISONS if c.concurrent)} (default 3, at most --runs)")
    parser.add_argument("--processes", type=int, default=32, help="concurrent initdb processes (default 32)")
    parser.add_argument("--only", default=",".join(c.key for c in COMPARISONS),
                        help="comparisons to run, e.g. 1,3 (default all)")
    parser.add_argument("--postgres-url", default=os.environ.get("BENCH_POSTGRES_URL", DEFAULT_POSTGRES_URL),
                        help=f"a PostgreSQL server's maintenance database (default {DEFAULT_POSTGRES_URL}, "
                             "or $BENCH_POSTGRES_URL)")
    parser.add_argument("--touch-sqlite", action="store_true",
                        help="comparison 1: start both sides from an empty 0-byte SQLite file instead of "
                             "a missing one (plain migrate may refuse a missing file)")
    args = parser.parse_args(argv)
    if args.quick:
        args.runs = 3
    if args.runs < 1:
        parser.error("--runs must be at least 1")
    args.concurrent_runs = args.concurrent_runs or min(3, args.runs)
    args.only = {part.strip() for part in args.only.split(",") if part.strip()}
    unknown = sorted(args.only - {c.key for c in COMPARISONS}, key=lambda k: (len(k), k))
    if unknown:
        parser.error(f"--only: no comparison {', '.join(unknown)} (there are {COMPARISONS[0].key} to "
                     f"{COMPARISONS[-1].key})")
    return args


def run(comparison, ctx: Context) -> Result:
    """One row of the table: its sides (set-up failures recorded), its timed runs, its notes."""
    args = ctx.args
    result = comparison.result(args)
    result.by_pairs = comparison.fine
    log(f"\n[{result.key}] {result.title}")
    try:
        side_a, side_b = comparison.sides(ctx, result)
    except CommandFailed as exc:
        result.fail(exc, during="set-up")
        return result
    runs = args.concurrent_runs if comparison.concurrent else args.runs * (FINE_RUNS if comparison.fine else 1)
    compare(result, side_a, side_b, runs)
    if comparison.report and not result.error:
        comparison.report(ctx, result)
    return result


def main(argv=None) -> int:
    args = parse_args(argv)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # so that the clean-up below runs
    started = time.perf_counter()
    ctx = Context(args)
    results: list[Result] = []
    pg_version = None
    try:
        log(f"Benchmarking with {sys.executable} ({args.runs} runs per side; scratch files in {ctx.tmp})")
        chosen = [c for c in COMPARISONS if c.key in args.only]
        unreachable = ctx.pg_unreachable() if any(c.needs_postgres for c in chosen) else None
        if any(c.needs_postgres for c in chosen) and not unreachable:
            pg_version = ctx.pg_version()
        for comparison in chosen:
            if comparison.needs_postgres and unreachable:
                log(f"\n[{comparison.key}] skipped: no PostgreSQL server at {args.postgres_url} ({unreachable})")
                results.append(Result(comparison.key, "needs PostgreSQL", None,
                                      error="skipped: PostgreSQL not reachable"))
                continue
            try:
                results.append(run(comparison, ctx))
            finally:
                ctx.drop_finished()
    finally:
        ctx.cleanup()
    total = time.perf_counter() - started

    report = table(results)
    notes = [note for r in results for note in r.notes]
    log("\n" + report)
    for note in notes:
        log("\n" + note)
    log("\n" + machine(pg_version, args))
    log(f"Whole run: {total:.0f} s.")
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text("# dbinit benchmark\n\n" + report + "\n\n"
                       + "".join(note + "\n\n" for note in notes)
                       + machine(pg_version, args) + f" Whole run {total:.0f} s.\n")
    log(f"Written to {RESULTS.relative_to(ROOT)}.")
    failed = [r for r in results if r.failed]
    if failed:
        log(f"A command failed in comparison(s) {', '.join(r.key for r in failed)}: exit status 1.")
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
