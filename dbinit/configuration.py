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
    if settings.AISECRETARY_ENV == "production":
        if not settings.SECRET_KEY or settings.SECRET_KEY.startswith("django-insecure"):
            problems.append(ConfigurationError(errors.E004, setting="SECRET_KEY", step="configuration"))
        if settings.DEBUG:
            problems.append(ConfigurationError(errors.E007, step="configuration"))
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


def parse_seconds(setting: str, value: str | None, default: float) -> float:
    if value is None or value.strip() == "":
        return default
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1.0
    if not (0 < seconds <= 3600):
        raise ConfigurationError(
            errors.E005, setting=setting, value=value, expected="expected a number of seconds between 0 and 3600",
            step="configuration",
        )
    return seconds


def mask_url(url: str) -> str:
    """``postgres://u:secret@h/db`` -> ``postgres://u:***@h/db``; never fails."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError:
        return re.sub(r"(//[^:/@]*:)[^@]*@", r"\1" + MASK + "@", url)
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    userinfo = netloc[0].split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{userinfo}:{MASK}@{netloc[1]}"))


def parse_database_url(url: str) -> dict:
    """Validate ``DATABASE_URL`` and turn it into a ``DATABASES`` entry.

    django-environ does the parsing; the checks before it turn what it would
    accept silently (unknown schemes, no database name) or raise as a bare
    ``ValueError`` (bad port) into catalogued errors with the password masked.
    """
    import environ  # django-environ; imported here so importing this module stays cheap

    shown = mask_url(url)
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError as exc:
        raise ConfigurationError(errors.E002, url=shown, reason=str(exc).lower(), step="configuration") from None
    scheme = parts.scheme.lower()
    if not scheme or "://" not in url:
        raise ConfigurationError(errors.E002, url=shown, reason="it is not a URL (scheme://...)", step="configuration")
    if scheme not in _SQLITE_SCHEMES | _POSTGRES_SCHEMES:
        raise ConfigurationError(errors.E003, engine=scheme, step="configuration")
    if scheme in _POSTGRES_SCHEMES:
        if not parts.path.strip("/"):
            raise ConfigurationError(errors.E002, url=shown, reason="it names no database (…/NAME)", step="configuration")
        if not parts.hostname and "host=" not in parts.query:
            raise ConfigurationError(errors.E002, url=shown, reason="it names no host", step="configuration")
    elif parts.path in ("", "/") and parts.netloc != ":memory:":
        raise ConfigurationError(errors.E002, url=shown, reason="it names no database file", step="configuration")
    try:
        config = environ.Env.db_url_config(url)
    except (ValueError, KeyError) as exc:
        raise ConfigurationError(errors.E002, url=shown, reason=str(exc), step="configuration") from None
    return config


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
        password=MASK if settings_dict.get("PASSWORD") else "",
    )


def secrets_of(databases: dict) -> list[str]:
    """Every password in ``DATABASES``: what :func:`scrub` must never let through."""
    return [d["PASSWORD"] for d in databases.values() if d.get("PASSWORD")]


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
    text = re.sub(r"(password\s*=\s*)('[^']*'|\S+)", r"\1" + MASK, text, flags=re.I)
    return re.sub(r"(://[^:/@\s]*:)[^@\s]*@", r"\1" + MASK + "@", text)
