"""Settings for AI Secretary.

The environment is read once, here, through django-environ. ``AISECRETARY_ENV``
selects development (default), production or testing; defaults differ by
environment and production refuses to start without what it needs. Every bad
value raises a catalogued ``ConfigurationError`` (``dbinit.E00x``) that
``manage.py``, ``wsgi.py`` and ``asgi.py`` render without a traceback.
"""

from pathlib import Path

import environ

from dbinit import configuration as conf
from dbinit import errors, sqlite
from dbinit.errors import ConfigurationError

BASE_DIR = Path(__file__).resolve().parent.parent

env = environ.Env()

AISECRETARY_ENV = conf.parse_environment(env.str("AISECRETARY_ENV", default=None))
PRODUCTION = AISECRETARY_ENV == "production"
TESTING = AISECRETARY_ENV == "testing"

# --- core ---------------------------------------------------------------------
if PRODUCTION:
    SECRET_KEY = env.str("SECRET_KEY", default="")
    if not SECRET_KEY:
        raise ConfigurationError(errors.E004, setting="SECRET_KEY", step="configuration")
    DEBUG = False
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=[])
    CSRF_TRUSTED_ORIGINS = env.list("CSRF_TRUSTED_ORIGINS", default=[])
else:
    SECRET_KEY = env.str("SECRET_KEY", default=conf.DEVELOPMENT_SECRET_KEY)
    DEBUG = env.bool("DEBUG", default=not TESTING)
    ALLOWED_HOSTS = env.list("ALLOWED_HOSTS", default=["localhost", "127.0.0.1", "[::1]", "testserver"])

INSTALLED_APPS = [
    # dbinit first: its runserver (start-up initialisation) must win over staticfiles'.
    "dbinit",
    "django.contrib.admin",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "health_check",
    "tenants",
    "accounts",
]

MIDDLEWARE = [
    "django.middleware.security.SecurityMiddleware",
    "django.contrib.sessions.middleware.SessionMiddleware",
    "django.middleware.common.CommonMiddleware",
    "django.middleware.csrf.CsrfViewMiddleware",
    "django.contrib.auth.middleware.AuthenticationMiddleware",
    "django.contrib.messages.middleware.MessageMiddleware",
    "django.middleware.clickjacking.XFrameOptionsMiddleware",
]

ROOT_URLCONF = "aisecretary.urls"
WSGI_APPLICATION = "aisecretary.wsgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]

# --- dbinit -------------------------------------------------------------------
DBINIT_CONNECT_TIMEOUT = conf.parse_seconds(
    "DBINIT_CONNECT_TIMEOUT", env.str("DBINIT_CONNECT_TIMEOUT", default=None), 30.0 if PRODUCTION else 5.0
)
DBINIT_LOCK_TIMEOUT = conf.parse_seconds(
    "DBINIT_LOCK_TIMEOUT", env.str("DBINIT_LOCK_TIMEOUT", default=None), 300.0
)
# PostgreSQL's lock is a lease: a holder that died is taken over at most this long after its
# last heartbeat (every third of it). See README, "How the initialisation lock works".
DBINIT_LOCK_LEASE = conf.parse_seconds("DBINIT_LOCK_LEASE", env.str("DBINIT_LOCK_LEASE", default=None), 30.0)
DBINIT_STARTUP = conf.parse_choice(
    "DBINIT_STARTUP",
    env.str("DBINIT_STARTUP", default=None),
    conf.STARTUP_MODES,
    {"development": "init", "production": "check", "testing": "off"}[AISECRETARY_ENV],
)
DBINIT_ADMIN_EMAIL = conf.parse_email("DBINIT_ADMIN_EMAIL", env.str("DBINIT_ADMIN_EMAIL", default=None),
                                      conf.DEFAULT_ADMIN_EMAIL)
# Production has no default: initdb refuses the well-known one and generates one when unset.
DBINIT_ADMIN_PASSWORD = env.str(
    "DBINIT_ADMIN_PASSWORD", default=None if PRODUCTION else conf.WELL_KNOWN_PASSWORD
)
DBINIT_BACKUP_DIR = env.str("DBINIT_BACKUP_DIR", default="") or None
# Where a generated admin password is written (a new 0600 file); default var/admin-password-STAMP.txt.
DBINIT_ADMIN_PASSWORD_FILE = env.str("DBINIT_ADMIN_PASSWORD_FILE", default="") or None
# Bearer token that shows /health/ details to non-staff clients (monitoring); unset: staff only.
DBINIT_HEALTH_TOKEN = conf.parse_token("DBINIT_HEALTH_TOKEN", env.str("DBINIT_HEALTH_TOKEN", default=""))
# New databases copied from a verified template instead of replaying every migration
# (dbinit.templates). Off in production by default: it builds extra databases on the server.
DBINIT_TEMPLATES = conf.parse_choice(
    "DBINIT_TEMPLATES", env.str("DBINIT_TEMPLATES", default=None), ("on", "off"), "off" if PRODUCTION else "on"
)
DBINIT_TEMPLATE_DIR = env.str("DBINIT_TEMPLATE_DIR", default="") or str(BASE_DIR / "var" / "templates")
DBINIT_TEMPLATE_PREFIX = env.str("DBINIT_TEMPLATE_PREFIX", default="dbinit_template_")
# How many migration sets' templates to keep per engine, alias and schema settings (the current one
# included): building a new one removes older ones beyond it. 0 keeps every one.
DBINIT_TEMPLATE_KEEP = conf.parse_count("DBINIT_TEMPLATE_KEEP", env.str("DBINIT_TEMPLATE_KEEP", default=None), 3)
# The committed snapshots (manage.py dbsnapshot), one SQL file per engine.
DBINIT_SNAPSHOT_DIR = env.str("DBINIT_SNAPSHOT_DIR", default="") or str(BASE_DIR / "snapshots")

# --- database -----------------------------------------------------------------
DEFAULT_SQLITE_PATH = BASE_DIR / "var" / ("test.sqlite3" if TESTING else "db.sqlite3")
_database_url = env.str("DATABASE_URL", default="")
if not _database_url:
    if PRODUCTION:
        raise ConfigurationError(errors.E004, setting="DATABASE_URL", step="configuration")
    _database_url = f"sqlite:///{DEFAULT_SQLITE_PATH}"
    try:  # the embedded default works out of the box, even for a plain `migrate`
        DEFAULT_SQLITE_PATH.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise ConfigurationError(errors.E016, path=str(DEFAULT_SQLITE_PATH), reason=exc.strerror, step="configuration")
DATABASES = {"default": conf.parse_database_url(_database_url)}
del _database_url

_default_db = DATABASES["default"]
if _default_db["ENGINE"] != "django.db.backends.sqlite3":
    # One connection attempt; dbinit retries with backoff up to DBINIT_CONNECT_TIMEOUT.
    _default_db.setdefault("OPTIONS", {}).setdefault("connect_timeout", max(2, min(10, int(DBINIT_CONNECT_TIMEOUT))))

# SQLite fit for production, in every environment (README, "Databases"): initdb makes the journal
# mode persistent in the file; every connection gets immediate transactions, the busy timeout and
# `synchronous`. A settings module adding SQLite aliases calls sqlite.apply_connection_defaults too.
DBINIT_SQLITE_JOURNAL_MODE = conf.parse_choice(
    "DBINIT_SQLITE_JOURNAL_MODE", env.str("DBINIT_SQLITE_JOURNAL_MODE", default=None), sqlite.JOURNAL_MODES, "wal"
)
DBINIT_SQLITE_TRANSACTION_MODE = conf.parse_choice(
    "DBINIT_SQLITE_TRANSACTION_MODE", env.str("DBINIT_SQLITE_TRANSACTION_MODE", default=None),
    sqlite.TRANSACTION_MODES, "immediate",
)
DBINIT_SQLITE_SYNCHRONOUS = conf.parse_choice(
    "DBINIT_SQLITE_SYNCHRONOUS", env.str("DBINIT_SQLITE_SYNCHRONOUS", default=None), sqlite.SYNCHRONOUS_MODES,
    sqlite.default_synchronous(DBINIT_SQLITE_JOURNAL_MODE),
)
# How long a statement waits for another process's write lock before "database is locked".
DBINIT_SQLITE_BUSY_TIMEOUT = conf.parse_seconds(
    "DBINIT_SQLITE_BUSY_TIMEOUT", env.str("DBINIT_SQLITE_BUSY_TIMEOUT", default=None), DBINIT_CONNECT_TIMEOUT
)
sqlite.apply_connection_defaults(
    DATABASES, busy_timeout=DBINIT_SQLITE_BUSY_TIMEOUT, transaction_mode=DBINIT_SQLITE_TRANSACTION_MODE,
    synchronous=DBINIT_SQLITE_SYNCHRONOUS,
)
# The aliases start-up and /health/ cover (default: every alias), e.g. "default,analytics".
DBINIT_DATABASES = env.list("DBINIT_DATABASES", default=[])
# How far (seconds) a PostgreSQL standby may be behind its primary before dbhealth, start-up and
# /health/ warn (dbinit.W074); up to a week, for a standby delayed on purpose.
DBINIT_REPLICA_MAX_LAG = conf.parse_seconds(
    "DBINIT_REPLICA_MAX_LAG", env.str("DBINIT_REPLICA_MAX_LAG", default=None), 30.0, maximum=7 * 24 * 3600
)

DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"
AUTH_USER_MODEL = "accounts.User"

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.UserAttributeSimilarityValidator"},
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
    {"NAME": "django.contrib.auth.password_validation.CommonPasswordValidator"},
    {"NAME": "django.contrib.auth.password_validation.NumericPasswordValidator"},
]
if TESTING:
    PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "var" / "static"

if PRODUCTION:
    # HTTPS. The rules a server refuses to start without (SECRET_KEY, DEBUG, ALLOWED_HOSTS) are in
    # dbinit.configuration.production_problems; these have safe defaults and may be relaxed.
    SESSION_COOKIE_SECURE = env.bool("SESSION_COOKIE_SECURE", default=True)
    CSRF_COOKIE_SECURE = env.bool("CSRF_COOKIE_SECURE", default=True)
    # Behind a TLS-terminating proxy that sets it (and strips it from clients): HTTP_X_FORWARDED_PROTO,https.
    SECURE_PROXY_SSL_HEADER = conf.parse_header_pair(
        "SECURE_PROXY_SSL_HEADER", env.str("SECURE_PROXY_SSL_HEADER", default=None))
    SECURE_SSL_REDIRECT = env.bool("SECURE_SSL_REDIRECT", default=True)
    # Probes reach the workers over plain HTTP inside the network; a redirect would read as success.
    SECURE_REDIRECT_EXEMPT = [r"^health/"]
    SECURE_HSTS_SECONDS = conf.parse_count("SECURE_HSTS_SECONDS", env.str("SECURE_HSTS_SECONDS", default=None), 31536000)
    SECURE_HSTS_INCLUDE_SUBDOMAINS = env.bool("SECURE_HSTS_INCLUDE_SUBDOMAINS", default=True)
    # Preloading is a promise to browsers that is slow to take back: opt in.
    SECURE_HSTS_PRELOAD = env.bool("SECURE_HSTS_PRELOAD", default=False)

# /health/: warnings (e.g. pending migrations) are reported but keep the probe green.
HEALTH_CHECK = {"WARNINGS_AS_ERRORS": False, "DISABLE_THREADING": True}

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"scrub_secrets": {"()": "dbinit.logfilters.ScrubSecretsFilter"}},
    "formatters": {"dbinit": {"format": "%(asctime)s %(levelname)s %(name)s: %(message)s"}},
    "handlers": {
        "dbinit_console": {
            "class": "logging.StreamHandler",
            "formatter": "dbinit",
            "filters": ["scrub_secrets"],
        },
    },
    "loggers": {
        "dbinit": {
            "handlers": ["dbinit_console"],
            "level": env.str("DBINIT_LOG_LEVEL", default="WARNING" if TESTING else "INFO"),
            "propagate": False,
        },
    },
}
