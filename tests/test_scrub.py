"""The scrubber removes a password from driver text in each form it can take: exact outputs, no database."""

import pytest

from dbinit.configuration import scrub


@pytest.mark.parametrize("text, secrets, expected", [
    # The password as it is (a driver echoing what it was given).
    ("FATAL: role root rejected s3cr3t-Pa55 (from 10.0.0.1)", ["s3cr3t-Pa55"],
     "FATAL: role root rejected *** (from 10.0.0.1)"),
    # URL-quoted: only its quoted form is in the text (no '://' for the URL rule to find).
    ("could not connect: dsn postgres%3A%2F%2Froot%3Ap%40ss%2Fw%3Ard at 127.0.0.1 (p%40ss%2Fw%3Ard)", ["p@ss/w:rd"],
     "could not connect: dsn postgres%3A%2F%2Froot%3A*** at 127.0.0.1 (***)"),
    # A query-string password nobody configured: the rest of the token goes with it.
    ("invalid connection option in host=db?password=hunter2&sslmode=require", [],
     "invalid connection option in host=db?password=***"),
    # A URL's userinfo password, not in the list either.
    ("connect to postgres://root:hunter2@db:5432/app failed", [], "connect to postgres://root:***@db:5432/app failed"),
])
def test_scrub_masks_every_form_of_a_password(text, secrets, expected):
    assert scrub(text, secrets) == expected


def test_scrub_leaves_text_without_a_secret_alone():
    text = "relation \"accounts_user\" does not exist at character 15"
    assert scrub(text, ["s3cr3t-Pa55"]) == text
