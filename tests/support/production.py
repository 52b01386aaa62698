"""A production environment that passes every production rule, for tests to start from.

Tests that prove a refusal take this and break one thing; the key below is only ever
used by the tests (it is not the repository's development key and has 50+ varied characters).
"""

PRODUCTION_SECRET_KEY = "tests-only-9f1c2b7e4d-Qx8pLm3Zr6Tn0Wv5Ys2Ka7Hd4Jf1Gb8Nc3Me6Uh"

PRODUCTION = {
    "AISECRETARY_ENV": "production",
    "SECRET_KEY": PRODUCTION_SECRET_KEY,
    "ALLOWED_HOSTS": "app.example.com,testserver",
    "DBINIT_ADMIN_PASSWORD": "Str0ng-and-long-Pw",
}


def production(**overrides) -> dict:
    """The production environment with ``overrides`` (None removes a variable)."""
    return {**PRODUCTION, **overrides}
