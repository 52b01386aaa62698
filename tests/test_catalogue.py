"""The error catalogue and the reference page generated from it."""

import re
from pathlib import Path

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
    for path in (ROOT / "dbinit").rglob("*.py"):
        used |= set(re.findall(r'DbinitError\(\s*"([CEWI]\d{3})"', path.read_text()))
        used |= set(re.findall(r'ConfigurationError\(\s*"([CEWI]\d{3})"', path.read_text()))
    used |= set(re.findall(r'ConfigurationError\(\s*"([CEWI]\d{3})"', (ROOT / "aisecretary/settings.py").read_text()))
    assert used, "the scan found nothing"
    assert {f"dbinit.{c}" for c in used} <= set(CATALOGUE)


def test_rendered_error_has_id_message_and_steps():
    error = DbinitError("E010", target="db:5432/x", timeout="5", reason="connection refused", step="connect")
    text = error.render()
    assert text.startswith("dbinit.E010 Database server unreachable (step: connect)")
    assert "Could not connect to db:5432/x within 5s: connection refused." in text
    assert "pg_isready" in text
