"""Secrets never appear in a message: query-string passwords, unencoded characters, unparseable URLs.

And control characters (a NUL in the database name crashed initdb with a traceback) are
refused with dbinit.E083 before anything uses the URL.
"""

import json

import pytest

from tests.support.databases import manage

SECRET = "Xq9SECRETpw"


def refused(url, code):
    proc = manage("check", env={"DATABASE_URL": url})
    output = proc.stdout + proc.stderr
    assert proc.returncode == 2, output
    assert code in output and "Traceback" not in output
    for fragment in (SECRET, SECRET[:6], SECRET[-6:]):
        assert fragment not in output, output
    return proc.stderr


@pytest.mark.parametrize("url", [
    f"postgres://root@127.0.0.1:99999/db?password={SECRET}",
    f"postgres://root@127.0.0.1:abc/db?sslpassword={SECRET}&sslmode=require",
    f"postgres://root@127.0.0.1:99999/db?passfile=/run/{SECRET}/pgpass",
    f"postgres://root@127.0.0.1:99999/db?PASSWORD={SECRET}",
    f"postgres://root:p@{SECRET}@127.0.0.1:99999/db",  # unencoded '@'
    f"postgres://root:ab#{SECRET}@127.0.0.1:5432/db",  # unencoded '#'
    f"postgres://root:{SECRET}#@127.0.0.1:5432/db",
    f"postgres://root:{SECRET}@[::1/db",  # unparseable host
    f"postgres://root:{SECRET}@127.0.0.1:5432/",  # no database name
    f"not a url {SECRET}",
    f"postgres:/root:{SECRET}@127.0.0.1/db",
])
def test_malformed_urls_never_show_a_secret(url):
    refused(url, "dbinit.E002")


def test_the_shown_url_keeps_the_harmless_parts():
    stderr = refused(f"postgres://root:{SECRET}@db.example:99999/app?password={SECRET}&sslmode=require",
                     "dbinit.E002")
    assert "postgres://root:***@db.example:99999/app?password=***&sslmode=require" in stderr


@pytest.mark.parametrize("url, part", [
    ("postgres://root@127.0.0.1:5432/db%00x", "database name"),
    ("postgres://ro%00ot@127.0.0.1:5432/db", "user"),
    (f"postgres://root:{SECRET}%00@127.0.0.1:5432/db", "password"),
    ("postgres://root@127.0.0.1:5432/db?sslmode=requ%00ire", "options"),
    ("postgres://root@127.0.0.1:5432/db%0Ax", "database name"),
    ("postgres://root@127.0.0.1:5432/db\tx", "URL"),
    ("sqlite:////tmp/db%00.sqlite3", "database name"),
])
def test_control_characters_are_refused(url, part):
    stderr = refused(url, "dbinit.E083")
    assert f"in its {part}" in stderr


def test_initdb_with_a_nul_in_the_name_has_no_traceback():
    proc = manage("initdb", "--noinput", env={"DATABASE_URL": "postgres://root@127.0.0.1:5432/db%00x"})
    assert proc.returncode == 2 and "dbinit.E083" in proc.stderr and "Traceback" not in proc.stderr


def test_query_string_password_is_masked_in_the_description(tmp_path):
    # Port 1: nothing listens, so the report is the description and the refused connection.
    url = f"postgres://root@127.0.0.1:1/dbinit_masking?password={SECRET}"
    proc = manage("dbhealth", "--format", "json", env={"DATABASE_URL": url, "DBINIT_CONNECT_TIMEOUT": "1"})
    assert SECRET not in proc.stdout + proc.stderr
    assert json.loads(proc.stdout)["database"]["password"] == "***"


def test_query_string_password_on_an_sqlite_url_is_refused_without_showing_it(tmp_path):
    url = f"sqlite:///{tmp_path}/db.sqlite3?password={SECRET}"  # no such SQLite option: E018
    proc = manage("initdb", "--noinput", "--plan", env={"DATABASE_URL": url})
    assert proc.returncode == 2 and "dbinit.E018" in proc.stderr
    assert SECRET not in proc.stdout + proc.stderr


def test_scrub_masks_query_string_secrets():
    from dbinit.configuration import scrub

    text = f"could not connect: dsn 'password={SECRET} sslpassword={SECRET} passfile=/x/{SECRET}' ?password={SECRET}&a=1"
    assert SECRET not in scrub(text, [])
