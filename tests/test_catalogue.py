"""The error catalogue and the reference page generated from it."""

import re
from pathlib import Path

from dbinit import errors
from dbinit.errors import CATALOGUE, DbinitError, reference_markdown

ROOT = Path(__file__).resolve().parent.parent


def test_reference_page_matches_the_catalogue():
    page = (ROOT / "docs" / "error-codes.md").read_text()
    assert page == reference_markdown(), "docs/error-codes.md is stale: run `make docs`"
    listed = re.findall(r"^## (dbinit\.[CEWI]\d{3}):", page, flags=re.M)
    assert listed == list(CATALOGUE)


def test_every_entry_has_a_title_message_and_resolution():
    for code, entry in CATALOGUE.items():
        assert re.fullmatch(r"dbinit\.[CEWI]\d{3}", code)
        assert entry.title and entry.message and entry.resolution, code


def test_every_code_used_in_the_source_is_in_the_catalogue():
    used = set()
    sources = [*(ROOT / "dbinit").rglob("*.py"), ROOT / "aisecretary" / "settings.py"]
    for path in sources:
        if path.name == "errors.py":
            continue
        used |= set(re.findall(r"\berrors\.([CEWI]\d{3})\b", path.read_text()))
    assert len(used) > 40, "the scan found too little"
    assert {f"dbinit.{c}" for c in used} <= set(CATALOGUE)


def test_source_refers_to_ids_by_name_not_by_string():
    quoted = []
    for path in (ROOT / "dbinit").rglob("*.py"):
        if path.name != "errors.py":
            quoted += [f"{path.name}: {m}" for m in re.findall(r'"(?:dbinit\.)?[CEWI]\d{3}"', path.read_text())]
    assert quoted == []


def test_every_entry_is_a_module_constant_named_by_its_id():
    for code, entry in CATALOGUE.items():
        assert getattr(errors, code.split(".")[1]) is entry


def test_repair_kinds_in_the_catalogue_are_exactly_the_registered_actions():
    from dbinit.repair import ACTIONS

    named = {entry.repair for entry in CATALOGUE.values() if entry.repair}
    assert named == set(ACTIONS), "a catalogue repair kind has no action, or an action is named by no entry"


def test_informational_results_take_their_text_from_the_catalogue():
    assert errors.I003.format(count=26) == "All 26 migrations applied; history consistent."
    assert errors.I010.format() == "Initialisation lock is free."


def test_rendered_error_has_id_message_and_steps():
    error = DbinitError("E010", target="db:5432/x", timeout="5", reason="connection refused", step="connect")
    text = error.render()
    assert text.startswith("dbinit.E010 Database server unreachable (step: connect)")
    assert "Could not connect to db:5432/x within 5s: connection refused." in text
    assert "pg_isready" in text
