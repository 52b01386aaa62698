"""What environment a database belongs to, remembered by the database itself.

initdb records ``AISECRETARY_ENV`` in ``dbinit.Metadata`` (key ``environment``), as Rails'
``ar_internal_metadata`` does. A production record is never lowered by another
environment: a development shell pointed at the production ``DATABASE_URL`` sees the
record, seeds under production's rules, and its destructive commands (resetdb, dbrepair)
refuse unless ``--force`` and the typed database name. A record dbinit does not know
(anything but ``development`` or ``testing``: edited by hand, damaged) protects the database
as production does. A database reset from scratch starts a new record.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import DatabaseError, IntegrityError, transaction

from . import errors
from .errors import DbinitError

logger = logging.getLogger("dbinit")

KEY = "environment"
PRODUCTION = "production"


def recorded(alias="default") -> str | None:
    """The environment the database records (one primary-key read); None if none or unreadable."""
    from .models import Metadata

    try:
        return Metadata.objects.using(alias).filter(key=KEY).values_list("value", flat=True).first()
    except DatabaseError:  # no database or no dbinit_metadata table yet: nothing recorded
        return None


# The records that do not protect a database; anything else recorded there (production, but also
# "Production", "staging", an empty or damaged value) is treated as production: fail safe.
UNPROTECTED = ("development", "testing")


def says_production(found: str | None) -> bool:
    """Whether a recorded environment protects the database as production does."""
    return found is not None and found not in UNPROTECTED


def _shown(found: str) -> str:
    """A recorded value as text: a plain word as it is, anything else quoted (newlines, spaces, empty)."""
    return found if found.isidentifier() else ascii(found)


def effective(alias="default", current: str | None = None) -> str:
    """The environment whose rules apply: production if either the caller or the database says so."""
    current = current or settings.AISECRETARY_ENV
    return PRODUCTION if current == PRODUCTION or says_production(recorded(alias)) else current


def record(alias="default", current: str | None = None) -> str:
    """Record ``current`` unless the database already says production; return what is recorded."""
    from .models import Metadata

    current = current or settings.AISECRETARY_ENV
    existing = recorded(alias)
    if existing == current or says_production(existing):
        return existing
    try:
        with transaction.atomic(using=alias):
            if existing is None:
                Metadata.objects.using(alias).create(key=KEY, value=current)
            else:  # development or testing becoming production
                Metadata.objects.using(alias).filter(key=KEY).update(value=current)
    except IntegrityError:  # another process recorded it first
        return recorded(alias) or current
    logger.info("Recorded environment %s in the database", current)
    return current


def mismatch(alias="default", current: str | None = None, found: str | None = None) -> DbinitError | None:
    """W080 when the database records production and the caller is not production.

    ``found``: what the database records, when the caller has just read it (:func:`record` returns it).
    """
    current = current or settings.AISECRETARY_ENV
    found = found if found is not None else recorded(alias)
    if says_production(found) and current != PRODUCTION:
        return DbinitError(errors.W080, recorded=_shown(found), current=current)
    return None


def refusal(alias, command, *, force: bool, current: str | None = None) -> DbinitError | None:
    """E085 if ``command`` may not change this database from here without ``--force``.

    Returns None when the caller's environment matches (its own rules apply) or with
    ``force`` (the command must then have the database name typed).
    """
    current = current or settings.AISECRETARY_ENV
    found = recorded(alias)
    if says_production(found) and current != PRODUCTION and not force:
        return DbinitError(errors.E085, command=command, recorded=_shown(found), current=current)
    return None


def protected(alias="default", current: str | None = None) -> bool:
    """Whether the database records production while the caller is not."""
    current = current or settings.AISECRETARY_ENV
    return current != PRODUCTION and says_production(recorded(alias))
