"""Reading and validating dbinit's configuration.

The ``parse_*`` functions are called by ``aisecretary/settings.py`` while the
settings load, so they are pure Python and raise :class:`ConfigurationError`
(a catalogued error) for every bad value. :func:`validate_configuration` owns
the rules for loaded settings (environment, engine, production requirements,
the admin password): initdb's configuration step, the configuration health
check, resetdb and start-up all ask it. :func:`describe_database` is the
masked view of a ``DATABASES`` entry that every command prints.
"""

from __future__ import annotations

import re
import urllib.parse
from dataclasses import asdict, dataclass

from . import errors
from .errors import ConfigurationError

ENVIRONMENTS = ("development", "production", "testing")
STARTUP_MODES = ("init", "check", "off")
SUPPORTED_ENGINES = {
    "django.db.backends.sqlite3": "sqlite",
    "django.db.backends.postgresql": "postgresql",
}
_SQLITE_SCHEMES = {"sqlite"}
_POSTGRES_SCHEMES = {"postgres", "postgresql", "pgsql", "psql"}
WELL_KNOWN_PASSWORD = "admin123"
DEFAULT_ADMIN_EMAIL = "admin@ai-secretary.com"
# The repository's development key: published, so production refuses it whatever its length.
DEVELOPMENT_SECRET_KEY = "django-insecure-development-only-key-do-not-use-in-production"
# Django's own floor (django.core.checks.security.base: W009), as refusals rather than warnings.
SECRET_KEY_MIN_LENGTH = 50
SECRET_KEY_MIN_UNIQUE_CHARACTERS = 5
MASK = "***"


_UNSET = object()


def check_admin_password(password, environment):
    """Raise E006 when production would seed the admin with the well-known password."""
    if environment == "production" and password == WELL_KNOWN_PASSWORD:
        raise ConfigurationError(errors.E006, step="configuration")


def validate_configuration(alias="default", *, admin_password=_UNSET, seed=True) -> list:
    """Every configuration problem for ``alias``, as catalogued errors (no database I/O).

    ``admin_password`` is the password initdb would seed (default: ``DBINIT_ADMIN_PASSWORD``);
    it is judged only when ``seed`` is true.
    """
    from django.conf import settings

    if alias not in settings.DATABASES:
        return [ConfigurationError(errors.E008, alias=alias, aliases=", ".join(settings.DATABASES),
                                   step="configuration")]
    problems = []
    engine = settings.DATABASES[alias].get("ENGINE", "")
    if engine not in SUPPORTED_ENGINES:
        problems.append(ConfigurationError(errors.E003, engine=engine, step="configuration"))
    elif SUPPORTED_ENGINES[engine] == "postgresql":
        from .identifiers import unsafe_name_error

        # Before anything is created, dropped or even connected to.
        name = str(settings.DATABASES[alias].get("NAME") or "")
        unsafe = unsafe_name_error(name)
        if unsafe:
            problems.append(unsafe)
        template = template_database_reason(name)
        if template:
            problems.append(ConfigurationError(errors.E090, name=name, why=template, step="configuration"))
    problems += production_problems(settings)
    if settings.AISECRETARY_ENV == "production":
        password = settings.DBINIT_ADMIN_PASSWORD if admin_password is _UNSET else admin_password
        if seed:
            try:
                check_admin_password(password, settings.AISECRETARY_ENV)
            except ConfigurationError as exc:
                problems.append(exc)
    unknown = dbinit_databases_error()
    if unknown:
        problems.append(unknown)
    return problems


def template_database_reason(name: str) -> str | None:
    """Why the PostgreSQL database ``name`` is a template dbinit must never write to, or None."""
    from django.conf import settings

    if name in ("template0", "template1"):
        return "PostgreSQL template database (CREATE DATABASE copies it)"
    prefix = getattr(settings, "DBINIT_TEMPLATE_PREFIX", "")
    if prefix and name.startswith(prefix):
        return f"dbinit template (its name starts with DBINIT_TEMPLATE_PREFIX={prefix})"
    return None


# --- production rules ----------------------------------------------------------------
def secret_key_weakness(key: str) -> str | None:
    """Why ``key`` must not sign production sessions, or None. Never says what the key is."""
    if not key:
        return "is empty"
    if key == DEVELOPMENT_SECRET_KEY:
        return "is the repository's published development key"
    if key.startswith("django-insecure"):
        return "has the django-insecure prefix of a generated development key"
    if len(key) < SECRET_KEY_MIN_LENGTH:
        return f"has {len(key)} characters (at least {SECRET_KEY_MIN_LENGTH} are needed)"
    if len(set(key)) < SECRET_KEY_MIN_UNIQUE_CHARACTERS:
        return f"uses fewer than {SECRET_KEY_MIN_UNIQUE_CHARACTERS} distinct characters"
    return None


def production_problems(settings) -> list[ConfigurationError]:
    """The rules a production server refuses to start without (SECRET_KEY, DEBUG, ALLOWED_HOSTS).

    Pure settings reads, no I/O; :func:`validate_configuration` includes them, and start-up
    asks this function directly in every DBINIT_STARTUP mode (``off`` included), since it
    needs no database.
    """
    if getattr(settings, "AISECRETARY_ENV", None) != "production":
        return []
    problems = []
    why = secret_key_weakness(getattr(settings, "SECRET_KEY", "") or "")
    if why:
        problems.append(ConfigurationError(errors.E080, why=why, step="configuration"))
    if settings.DEBUG:
        problems.append(ConfigurationError(errors.E007, step="configuration"))
    if not [host for host in settings.ALLOWED_HOSTS if host.strip()]:
        problems.append(ConfigurationError(errors.E081, step="configuration"))
    return problems


def dbinit_databases_error() -> ConfigurationError | None:
    """``DBINIT_DATABASES`` (the aliases start-up and /health/ cover) naming an alias not in DATABASES."""
    from django.conf import settings

    named = getattr(settings, "DBINIT_DATABASES", None) or []
    unknown = [a for a in named if a not in settings.DATABASES]
    if not unknown:
        return None
    return ConfigurationError(errors.E005, setting="DBINIT_DATABASES", value=",".join(named),
                              expected=f"{', '.join(unknown)} not in DATABASES ({', '.join(settings.DATABASES)})",
                              step="configuration")


def parse_environment(value: str | None) -> str:
    value = (value or "development").strip().lower()
    if value not in ENVIRONMENTS:
        raise ConfigurationError(errors.E001, value=value, step="configuration")
    return value


def parse_choice(setting: str, value: str | None, choices: tuple[str, ...], default: str) -> str:
    if value is None or value.strip() == "":
        return default
    value = value.strip().lower()
    if value not in choices:
        raise ConfigurationError(
            errors.E005, setting=setting, value=value, expected="allowed values are " + ", ".join(choices),
            step="configuration",
        )
    return value


def parse_seconds(setting: str, value: str | None, default: float, maximum: float = 3600) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (0 < seconds <= maximum):
        raise ConfigurationError(
            errors.E005, setting=setting, value=value,
            expected=f"expected a number of seconds between 0 and {maximum:g}", step="configuration",
        )
    return seconds


MAX_EMAIL_LENGTH = 254  # accounts.User.email's max_length (RFC 5321's path limit)


def parse_email(setting: str, value: str | None, default: str) -> str:
    """An email address for the admin: unset or empty gives ``default``; anything that is not an
    address (no '@', a control character, longer than the column) is E005 before any row is written."""
    from django.core.exceptions import ValidationError
    from django.core.validators import validate_email

    if value is None or value.strip() == "":
        return default
    email = value.strip()
    try:
        if _has_control(email) or len(email) > MAX_EMAIL_LENGTH:
            raise ValidationError("not an address")
        validate_email(email)
    except ValidationError:
        raise ConfigurationError(errors.E005, setting=setting, value=_printable(email)[:80],
                                 expected=f"expected an email address (name@example.com, at most "
                                          f"{MAX_EMAIL_LENGTH} characters)", step="configuration") from None
    return email


MIN_TOKEN_LENGTH = 32


def parse_token(setting: str, value: str) -> str:
    """A bearer token: unset, or long enough that guessing it is hopeless."""
    value = (value or "").strip()
    if value and len(value) < MIN_TOKEN_LENGTH:
        raise ConfigurationError(errors.E005, setting=setting, value="(hidden)",
                                 expected=f"a token needs at least {MIN_TOKEN_LENGTH} characters",
                                 step="configuration")
    return value


def parse_count(setting: str, value: str | None, default: int) -> int:
    """A whole number >= 0 (e.g. SECURE_HSTS_SECONDS)."""
    if value is None or value.strip() == "":
        return default
    if not value.strip().isdigit():
        raise ConfigurationError(errors.E005, setting=setting, value=value, expected="expected a whole number >= 0",
                                 step="configuration")
    return int(value)


def parse_header_pair(setting: str, value: str | None) -> tuple[str, str] | None:
    """``HTTP_X_FORWARDED_PROTO,https`` -> ``("HTTP_X_FORWARDED_PROTO", "https")`` (SECURE_PROXY_SSL_HEADER)."""
    if value is None or not value.strip():
        return None
    header, sep, expected = (part.strip() for part in value.partition(","))
    if not sep or not expected or not header.startswith("HTTP_") or not header.replace("_", "").isalnum():
        raise ConfigurationError(errors.E005, setting=setting, value=value,
                                 expected="expected HEADER,VALUE as Django names it, e.g. HTTP_X_FORWARDED_PROTO,https",
                                 step="configuration")
    return header, expected


# Query-string keys whose values are secrets or point at them (password, sslpassword, passfile...).
_SECRET_KEY_PATTERN = re.compile(r"pass", re.I)
_URL_PATTERN = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*)://(.*)$", re.S)


def _printable(text: str) -> str:
    """``text`` with control characters shown as escapes (they never reach a terminal raw)."""
    return "".join(ch if ch.isprintable() else ascii(ch)[1:-1] for ch in text)


def _has_control(text: str) -> bool:
    return any(ord(ch) < 32 or ord(ch) == 127 for ch in text)


def mask_url(url: str) -> str:
    """``DATABASE_URL`` rebuilt from its parts without secrets; never the raw string, never fails.

    The password (everything between the user's ``:`` and the *last* ``@``, so unencoded
    ``@``, ``#``, ``/`` or ``?`` in it stay hidden) and every query value whose key names a
    password (``password``, ``sslpassword``, ``passfile``) become ``***``. Something that
    is not ``scheme://...`` is shown as ``(not a URL)``.
    """
    match = _URL_PATTERN.match(url or "")
    if not match:
        return "(not a URL)"
    scheme, rest = match.groups()
    auth = ""
    if "@" in rest:
        userinfo, _, rest = rest.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        auth = f"{_printable(user)}{':' + MASK if colon else ''}@"
    location, question, query = rest.partition("?")
    location = location.partition("#")[0]
    shown = f"{scheme}://{auth}{_printable(location)}"
    if question:
        pairs = []
        for pair in query.partition("#")[0].split("&"):
            key, equals, _ = pair.partition("=")
            secret = equals and _SECRET_KEY_PATTERN.search(urllib.parse.unquote(key))
            pairs.append(f"{_printable(key)}={MASK}" if secret else _printable(pair))
        shown += "?" + "&".join(pairs)
    return shown


def _refuse_control_characters(url: str, config: dict, shown: str) -> None:
    """E083 for a control character anywhere in the URL or its decoded parts (a NUL crashes drivers)."""
    if _has_control(url):
        raise ConfigurationError(errors.E083, url=shown, part="URL", step="configuration")
    parts = [("database name", config.get("NAME")), ("user", config.get("USER")),
             ("password", config.get("PASSWORD")), ("host", config.get("HOST")), ("port", config.get("PORT"))]
    parts += [("options", f"{k}={v}") for k, v in (config.get("OPTIONS") or {}).items()]
    for part, value in parts:
        if isinstance(value, str) and _has_control(value):
            raise ConfigurationError(errors.E083, url=shown, part=part, step="configuration")


def parse_database_url(url: str) -> dict:
    """Validate ``DATABASE_URL`` and turn it into a ``DATABASES`` entry.

    django-environ does the parsing; the checks before it turn what it would
    accept silently (unknown schemes, no database name, a password cut at an
    unencoded ``#``) or raise as a bare ``ValueError`` (bad port) into catalogued
    errors. Messages show :func:`mask_url`'s rebuilt URL and fixed reasons, never the
    parser's own text (it can quote a piece of the password).
    """
    import environ  # django-environ; imported here so importing this module stays cheap

    shown = mask_url(url)
    if not _URL_PATTERN.match(url):
        raise ConfigurationError(errors.E002, url=shown, reason="it is not a URL (scheme://...)", step="configuration")
    if _has_control(url):
        raise ConfigurationError(errors.E083, url=shown, part="URL", step="configuration")
    if "#" in url:
        raise ConfigurationError(errors.E002, url=shown, step="configuration",
                                 reason="it contains an unencoded '#' (write it as %23, in the password too)")
    try:
        parts = urllib.parse.urlsplit(url)
        port = parts.port
    except ValueError:
        raise ConfigurationError(errors.E002, url=shown, step="configuration",
                                 reason="its host or port cannot be read (the port must be a number up to 65535; "
                                        "percent-encode '@', '/', ':' and '?' in the password)") from None
    scheme = parts.scheme.lower()
    if scheme not in _SQLITE_SCHEMES | _POSTGRES_SCHEMES:
        raise ConfigurationError(errors.E003, engine=_printable(scheme), step="configuration")
    if scheme in _POSTGRES_SCHEMES:
        if not parts.path.strip("/"):
            raise ConfigurationError(errors.E002, url=shown, reason="it names no database (…/NAME)", step="configuration")
        if not parts.hostname and "host=" not in parts.query:
            raise ConfigurationError(errors.E002, url=shown, reason="it names no host", step="configuration")
    elif parts.path in ("", "/") and parts.netloc != ":memory:":
        raise ConfigurationError(errors.E002, url=shown, reason="it names no database file", step="configuration")
    del port
    try:
        config = environ.Env.db_url_config(url)
    except (ValueError, KeyError):
        raise ConfigurationError(errors.E002, url=shown, reason="django-environ cannot parse it",
                                 step="configuration") from None
    _refuse_control_characters(url, config, shown)
    if config.get("HOST") and "%" in config["HOST"]:
        # A Unix socket folder written as a host (postgres://user@%2Fvar%2Frun%2Fpostgresql/db):
        # django-environ leaves it encoded, libpq wants the path.
        config["HOST"] = urllib.parse.unquote(config["HOST"])
    if scheme in _SQLITE_SCHEMES:
        _refuse_unknown_sqlite_options(config.get("OPTIONS") or {})
    return config


# What Django's SQLite backend passes on to Python 3.11's sqlite3.connect(), and the two it reads itself.
_SQLITE_OPTIONS = {"timeout", "detect_types", "isolation_level", "cached_statements", "init_command",
                   "transaction_mode"}
_SQLITE_TRANSACTION_MODES = ("DEFERRED", "IMMEDIATE", "EXCLUSIVE")


def _refuse_unknown_sqlite_options(options: dict) -> None:
    """E018 for a query-string option SQLite's driver would reject with a TypeError (``?mode=ro``)
    or Django with ImproperlyConfigured (a bad ``transaction_mode``): at settings time, for every command."""
    for key, value in options.items():
        if key not in _SQLITE_OPTIONS:
            reason = (f"{_printable(key)!r} is not an SQLite connection option (the query string may hold "
                      f"{', '.join(sorted(_SQLITE_OPTIONS))})")
        elif key == "transaction_mode" and str(value).upper() not in _SQLITE_TRANSACTION_MODES:
            reason = f"transaction_mode must be one of {', '.join(_SQLITE_TRANSACTION_MODES)}"
        else:
            continue
        raise ConfigurationError(errors.E018, reason=reason, step="configuration")


@dataclass(frozen=True)
class DatabaseDescription:
    """What a person may be shown about a database: never the password."""

    alias: str
    engine: str
    vendor: str
    name: str
    host: str
    port: str
    user: str
    password: str  # MASK or "" (none set)

    def as_dict(self) -> dict:
        return asdict(self)

    def target(self) -> str:
        if self.vendor == "sqlite":
            return str(self.name)
        return f"{self.host or 'localhost'}:{self.port or 5432}/{self.name}"


def describe_database(settings_dict: dict, alias: str = "default") -> DatabaseDescription:
    engine = settings_dict.get("ENGINE", "")
    return DatabaseDescription(
        alias=alias,
        engine=engine,
        vendor=SUPPORTED_ENGINES.get(engine, engine.rsplit(".", 1)[-1]),
        name=str(settings_dict.get("NAME", "")),
        host=str(settings_dict.get("HOST") or ""),
        port=str(settings_dict.get("PORT") or ""),
        user=str(settings_dict.get("USER") or ""),
        password=MASK if settings_dict.get("PASSWORD") or _option_secrets(settings_dict) else "",
    )


def _option_secrets(settings_dict: dict) -> list[str]:
    """Secrets given as query-string options (``?password=...``), which libpq uses too."""
    options = settings_dict.get("OPTIONS") or {}
    return [str(v) for k, v in options.items() if _SECRET_KEY_PATTERN.search(str(k)) and v]





def secrets_of(databases: dict) -> list[str]:
    """Every password in ``DATABASES``: what :func:`scrub` must never let through."""
    found = [d["PASSWORD"] for d in databases.values() if d.get("PASSWORD")]
    return found + [secret for d in databases.values() for secret in _option_secrets(d)]


def scrub(text: str, secrets: list[str] | None = None) -> str:
    """Remove passwords from ``text`` (driver messages may echo the DSN)."""
    if secrets is None:
        from django.conf import settings

        secrets = secrets_of(settings.DATABASES)
    for secret in secrets:
        if secret:
            text = text.replace(secret, MASK)
            quoted = urllib.parse.quote(secret, safe="")
            if quoted != secret:
                text = text.replace(quoted, MASK)
    # key=value secrets (libpq DSNs, query strings): password, sslpassword, passfile, ...
    text = re.sub(r"(\w*pass\w*\s*=\s*)('[^']*'|\S+)", r"\1" + MASK, text, flags=re.I)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1" + MASK + "@", text)
