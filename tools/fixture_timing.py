"""pytest plugin: print the set-up time of the session fixtures that make databases.

Usage: PYTHONPATH=tools python -m pytest -p fixture_timing TESTS (the README's test-suite timing).
"""

import time

import pytest

NAMES = {"django_db_setup", "django_db_modify_db_settings", "template_db", "run_templates", "thirdparty_template",
         "populated_template", "multi_template"}
TIMES = {}


@pytest.hookimpl(hookwrapper=True)
def pytest_fixture_setup(fixturedef, request):
    t = time.perf_counter()
    yield
    if fixturedef.argname in NAMES:
        TIMES[fixturedef.argname] = time.perf_counter() - t


def pytest_terminal_summary(terminalreporter):
    for name, seconds in TIMES.items():
        terminalreporter.write_line(f"fixture set-up {name}: {seconds:.2f} s")
