"""Production refuses to start misconfigured; `check --deploy` is clean with the documented variables.

Each case breaks one rule of an otherwise valid production environment and starts the WSGI
application as gunicorn would, runs initdb, and asks /health/.
"""

import json

import pytest

from tests.support.databases import manage, python
from tests.support.production import production

DEVELOPMENT_KEY = "django-insecure-development-only-key-do-not-use-in-production"
BAD = [
    ({"SECRET_KEY": "abc"}, "dbinit.E080"),
    ({"SECRET_KEY": "k" * 60}, "dbinit.E080"),  # long, but five distinct characters are Django's floor
    ({"SECRET_KEY": "django-insecure-" + "Ab1-Cd2-Ef3-Gh4-Ij5-Kl6-Mn7-Op8-Qr9-St0-Uv"}, "dbinit.E080"),
    ({"SECRET_KEY": DEVELOPMENT_KEY}, "dbinit.E080"),
    ({"ALLOWED_HOSTS": None}, "dbinit.E081"),
    ({"ALLOWED_HOSTS": ""}, "dbinit.E081"),
    ({"DJANGO_SETTINGS_MODULE": "tests.settings.debug_on"}, "dbinit.E007"),
]


@pytest.mark.parametrize("mode", ["check", "off"])
@pytest.mark.parametrize("override, code", BAD)
def test_wsgi_refuses_to_start(initialized_db, override, code, mode):
    proc = python("-c", "import aisecretary.wsgi", db=initialized_db,
                  env=production(DBINIT_STARTUP=mode, **override))
    assert proc.returncode == 3, proc.stderr
    assert "dbinit.C004" in proc.stderr and code in proc.stderr
    assert "Traceback" not in proc.stderr
    if "SECRET_KEY" in override:
        assert override["SECRET_KEY"] not in proc.stderr  # never echoed


def test_asgi_refuses_too(initialized_db):
    proc = python("-c", "import aisecretary.asgi", db=initialized_db, env=production(SECRET_KEY="short"))
    assert proc.returncode == 3 and "dbinit.E080" in proc.stderr


@pytest.mark.parametrize("override, code", BAD[:5])
def test_initdb_refuses(fresh_db, override, code):
    proc = manage("initdb", "--noinput", db=fresh_db, env=production(**override))
    assert proc.returncode == 1
    assert code in proc.stderr and "Traceback" not in proc.stderr
    assert not fresh_db.exists()


def test_health_endpoint_fails_on_configuration(initialized_db):
    proc = python("tests/probes/health.py", "?format=json", db=initialized_db,
                  env=production(SECRET_KEY="abc", DBINIT_ADMIN_PASSWORD=None))
    assert proc.returncode == 0, proc.stderr
    result = json.loads(proc.stdout)
    assert result["status"] == 500
    assert json.loads(result["body"])["checks"]["dbinit:configuration"] == "fail"


def test_valid_production_starts(initialized_db):
    # The well-known password is someone else's test: give the admin a real one.
    proc = python("tests/probes/set_password.py", "admin@ai-secretary.com", "Another-long-Pw-42", db=initialized_db)
    assert proc.returncode == 0, proc.stderr
    proc = python("-c", "import aisecretary.wsgi", db=initialized_db, env=production(DBINIT_STARTUP="check"))
    assert proc.returncode == 0, proc.stderr


def test_check_deploy_is_clean_with_the_documented_variables(initialized_db):
    proc = manage("check", "--deploy", "--fail-level", "WARNING", db=initialized_db,
                  env=production(SECURE_HSTS_PRELOAD="true",
                                 SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https"))
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "System check identified no issues" in proc.stdout


def test_https_settings_from_the_environment():
    script = ("from django.conf import settings as s; import json; print(json.dumps([s.SECURE_PROXY_SSL_HEADER, "
              "s.SECURE_SSL_REDIRECT, s.SECURE_HSTS_SECONDS, s.SECURE_HSTS_INCLUDE_SUBDOMAINS, s.SECURE_HSTS_PRELOAD, "
              "s.SESSION_COOKIE_SECURE, s.CSRF_COOKIE_SECURE, s.SECURE_REDIRECT_EXEMPT]))")
    run = ["-c", "import django; django.setup(); " + script]
    env = {"DJANGO_SETTINGS_MODULE": "aisecretary.settings", "DATABASE_URL": "sqlite:////tmp/unused.sqlite3"}
    defaults = json.loads(python(*run, env=production(**env)).stdout)
    assert defaults == [None, True, 31536000, True, False, True, True, ["^health/"]]
    custom = python(*run, env=production(**env, SECURE_PROXY_SSL_HEADER="HTTP_X_FORWARDED_PROTO,https",
                                         SECURE_SSL_REDIRECT="false", SECURE_HSTS_SECONDS="3600"))
    assert json.loads(custom.stdout)[:3] == [["HTTP_X_FORWARDED_PROTO", "https"], False, 3600]
    bad = manage("check", env=production(**env, SECURE_PROXY_SSL_HEADER="X-Forwarded-Proto"))
    assert bad.returncode == 2 and "dbinit.E005" in bad.stderr and "Traceback" not in bad.stderr
