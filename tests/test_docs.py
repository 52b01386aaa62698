"""The README and `manage.py help` agree: every option of every dbinit command is documented."""

from pathlib import Path

import pytest
from django.core.management import load_command_class

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
COMMANDS = ["initdb", "dbhealth", "dbrepair", "resetdb", "dbsnapshot"]
DJANGO_COMMON = {"--version", "--verbosity", "--settings", "--pythonpath", "--traceback", "--no-color",
                 "--force-color", "--skip-checks", "--help"}


@pytest.mark.parametrize("name", COMMANDS)
def test_every_option_is_in_the_readme(name):
    command = load_command_class("dbinit", name)
    assert len(command.help) > 200, "help text should say what the command does"
    parser = command.create_parser("manage.py", name)
    assert f"manage.py {name}" in README
    options = {s for action in parser._actions for s in action.option_strings if s.startswith("--")}
    undocumented = sorted(o for o in options - DJANGO_COMMON if f"`{o}" not in README and f"{o}`" not in README
                          and f" {o} " not in README)
    # Aliases Django users expect (--no-input for --noinput) need no README line of their own.
    assert [o for o in undocumented if o != "--no-input"] == []


def test_every_setting_read_from_the_environment_is_in_the_readme():
    import re

    settings_source = (ROOT / "aisecretary" / "settings.py").read_text()
    variables = set(re.findall(r'env\.\w+\(\s*"([A-Z_]+)"', settings_source))
    assert variables, "the scan found nothing"
    missing = sorted(v for v in variables if f"`{v}`" not in README)
    assert missing == []
