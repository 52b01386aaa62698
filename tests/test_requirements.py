"""The lock file pins every requirement, with hashes, inside the ranges of base.txt and dev.txt."""

import re
from pathlib import Path

from packaging.requirements import Requirement
from packaging.version import Version

REQUIREMENTS = Path(__file__).resolve().parents[1] / "requirements"


def ranges():
    found = {}
    for name in ("base.txt", "dev.txt"):
        for line in (REQUIREMENTS / name).read_text().splitlines():
            line = line.split("#", 1)[0].strip()
            if line and not line.startswith("-"):
                requirement = Requirement(line)
                found[requirement.name.lower()] = requirement
    return found


def pins():
    text = (REQUIREMENTS / "lock.txt").read_text()
    entries = re.findall(r"^([A-Za-z0-9_.\-]+)==(\S+) \\\n((?:\s+--hash=sha256:[0-9a-f]{64}(?: \\)?\n)+)", text, re.M)
    return {name.lower().replace("_", "-"): Version(version) for name, version, _ in entries}


def test_every_requirement_is_pinned_with_hashes_inside_its_range():
    pinned = pins()
    for name, requirement in ranges().items():
        key = name.replace("_", "-")
        assert key in pinned, f"{name} is not in requirements/lock.txt (run make lock)"
        assert requirement.specifier.contains(pinned[key]), f"{name}=={pinned[key]} outside {requirement.specifier}"


def test_security_floors():
    floors = ranges()
    assert not floors["django"].specifier.contains("5.2.7")  # before CVE-2025-64459's fix (5.2.8)
    assert not floors["django"].specifier.contains("5.2.18")
    assert not floors["gunicorn"].specifier.contains("22.0.0")  # CVE-2024-6827 fixed in 23.0
    assert pins()["django"] >= Version("5.2.19")


def test_makefile_installs_the_lock_with_hashes():
    makefile = (REQUIREMENTS.parent / "Makefile").read_text()
    assert "--require-hashes -r requirements/lock.txt" in makefile
