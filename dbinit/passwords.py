"""Admin passwords in production: the well-known one never works, weak ones are never set.

Finding the well-known password means hashing it with each account's salt (PBKDF2, about
a quarter of a second each), so the answer is remembered: ``dbinit.Metadata`` keeps one row
per checked password-hash value, keyed ``pwcheck:`` + an HMAC (keyed with SECRET_KEY) of the
hash, holding the verdict (``ok`` or ``well-known``). Neither the hash nor the password is
stored. A changed password is a new hash value, so it is checked once, by the first process
that meets it; the others wait for its verdict instead of hashing too (a claim row). The
probe (``/health/``) never hashes: it only reads verdicts. Storing a verdict deletes those of
hash values no checked account has any more (a changed password, a removed admin), so there are
never more rows than accounts checked.

Which accounts: every active staff superuser (through the partial index
``accounts_user_admins_idx``, at most :data:`MAX_ACCOUNTS` rows) plus the seeded admin
addresses (``DBINIT_ADMIN_EMAIL`` and the development default, by the unique email index).
Those are the accounts dbinit seeds and the ones that can reach the admin; nothing here
scans the users table.
"""

from __future__ import annotations

import functools
import logging
import time
from dataclasses import dataclass

from . import errors
from .configuration import DEFAULT_ADMIN_EMAIL, WELL_KNOWN_PASSWORD
from .errors import DbinitError

logger = logging.getLogger("dbinit")

MAX_ACCOUNTS = 100
MEMO_PREFIX = "pwcheck:"
OK, WELL_KNOWN, CHECKING = "ok", "well-known", "checking"
# A claim older than this belongs to a process that died mid-check: take it over.
CLAIM_EXPIRES_SECONDS = 30.0


@dataclass(frozen=True)
class Account:
    """An active admin account whose password hash is judged."""

    email: str
    password: str  # the stored hash
    admin: bool = False  # an active staff superuser (else only one of the seeded addresses)


def memo_key(encoded: str) -> str:
    """The Metadata key for one password-hash value: a keyed digest, never the hash itself."""
    from django.conf import settings

    return _memo_key(encoded, settings.SECRET_KEY)


@functools.lru_cache(maxsize=4 * MAX_ACCOUNTS)
def _memo_key(encoded: str, secret: str) -> str:
    # Once per hash value and process: the probe asks for the same few keys on every request.
    from django.utils.crypto import salted_hmac

    digest = salted_hmac("dbinit.passwords.memo", encoded, secret=secret, algorithm="sha256").hexdigest()
    return MEMO_PREFIX + digest[:56]


def accounts(using="default") -> list[Account]:
    """The active accounts checked for the well-known password (two index lookups, bounded)."""
    from django.conf import settings
    from django.contrib.auth import get_user_model

    User = get_user_model()
    # No ORDER BY: the partial index answers "which admins" without sorting the table.
    admins = (User.objects.using(using).filter(is_active=True, is_staff=True, is_superuser=True).order_by()
              .values_list("email", "password")[:MAX_ACCOUNTS])
    emails = {settings.DBINIT_ADMIN_EMAIL.strip().lower(), DEFAULT_ADMIN_EMAIL}
    seeded = (User.objects.using(using).filter(is_active=True).alias(email_ci=_lower_email())
              .filter(email_ci__in=emails).order_by().values_list("email", "password"))
    found = {email: Account(email, encoded) for email, encoded in seeded}
    found.update({email: Account(email, encoded, admin=True) for email, encoded in admins})
    return sorted(found.values(), key=lambda a: a.email)


def _lower_email():
    from django.db.models.functions import Lower

    return Lower("email")


def well_known_accounts(using="default", *, may_hash: bool, candidates: list[Account] | None = None) -> list[str]:
    """Emails of the accounts whose password is the well-known one.

    ``may_hash=False`` (the probe) reads remembered verdicts only: an account not checked
    yet is not reported (start-up checks every account before the first request).
    ``candidates``: :func:`accounts`' answer when the caller already has it.
    """
    from django.contrib.auth.hashers import is_password_usable

    from .models import Metadata

    candidates = accounts(using) if candidates is None else candidates
    found = [a for a in candidates if is_password_usable(a.password)]
    if not found:
        return []
    from django.contrib.auth.hashers import check_password
    from django.db import DatabaseError

    keys = {a.email: memo_key(a.password) for a in found}
    try:
        verdicts = dict(Metadata.objects.using(using).filter(key__in=keys.values()).values_list("key", "value"))
    except DatabaseError:  # dbinit.0003 not applied yet: nowhere to remember, so nothing is shared
        verdicts = None
    flagged, stored = [], False
    for account in found:
        if verdicts is None:
            verdict = (WELL_KNOWN if may_hash and check_password(WELL_KNOWN_PASSWORD, account.password) else OK)
        else:
            verdict = verdicts.get(keys[account.email])
            if verdict not in (OK, WELL_KNOWN) and may_hash:
                verdict = _check_once(using, keys[account.email], account.password)
                stored = True
        if verdict == WELL_KNOWN:
            flagged.append(account.email)
    if stored and _every_admin(candidates):
        _forget_others(using, set(keys.values()))
    return flagged


def _every_admin(found: list[Account]) -> bool:
    """Whether ``found`` (:func:`accounts`' answer) holds every admin: the lookup stops at
    :data:`MAX_ACCOUNTS`, and beyond it the verdicts of admins not listed this time are kept."""
    return sum(account.admin for account in found) < MAX_ACCOUNTS


def _forget_others(using, keep: set[str]) -> None:
    """Delete the verdicts of hash values no checked account has any more (changed passwords,
    removed admins): the rows stay as many as the accounts, never one per password ever set."""
    from django.db import DatabaseError, transaction

    from .models import Metadata

    try:
        with transaction.atomic(using=using):  # a savepoint when the caller holds a transaction
            Metadata.objects.using(using).filter(key__startswith=MEMO_PREFIX).exclude(key__in=keep).delete()
    except DatabaseError as exc:  # bookkeeping: a verdict kept too long costs a row, not a wrong answer
        logger.warning("Could not prune the remembered password checks: %s", exc)


def _check_once(using, key, encoded) -> str:
    """Hash the well-known password against ``encoded`` unless another process is doing it."""
    from django.contrib.auth.hashers import check_password
    from django.db import IntegrityError, transaction
    from django.utils import timezone

    from .models import Metadata

    deadline = time.monotonic() + CLAIM_EXPIRES_SECONDS
    while True:
        try:
            with transaction.atomic(using=using):
                Metadata.objects.using(using).create(key=key, value=CHECKING)
            break  # this process claimed it
        except IntegrityError:
            row = Metadata.objects.using(using).filter(key=key).values_list("value", "updated_at").first()
            if row is None:
                continue
            value, updated = row
            if value in (OK, WELL_KNOWN):
                return value
            age = (timezone.now() - updated).total_seconds()
            if age > CLAIM_EXPIRES_SECONDS or time.monotonic() > deadline:
                break  # its claimant died: check it here
            time.sleep(0.05)
    # hashers.check_password, not User.check_password: no setter, so a check never rewrites the hash.
    verdict = WELL_KNOWN if check_password(WELL_KNOWN_PASSWORD, encoded) else OK
    Metadata.objects.using(using).update_or_create(key=key, defaults={"value": verdict})
    return verdict


def well_known_error(emails: list[str]) -> DbinitError:
    return DbinitError(errors.C003, count=len(emails), emails=", ".join(emails), email=emails[0])


def refuse_well_known(using="default") -> None:
    """Raise ``dbinit.C003`` if an admin account has the well-known password (may hash, once)."""
    emails = well_known_accounts(using, may_hash=True)
    if emails:
        raise well_known_error(emails)


def refuse_weak(password: str, email: str) -> None:
    """Raise E006/E086 unless ``password`` may become a production admin's password.

    The well-known password by name (E006), then Django's AUTH_PASSWORD_VALIDATORS, as
    createsuperuser runs them, with the admin's email for the similarity check (E086).
    """
    from django.contrib.auth import get_user_model
    from django.contrib.auth.password_validation import validate_password
    from django.core.exceptions import ValidationError

    from .configuration import check_admin_password

    check_admin_password(password, "production")  # the one owner of E006
    try:
        validate_password(password, user=get_user_model()(email=email))
    except ValidationError as exc:
        raise DbinitError(errors.E086, email=email, reasons=" ".join(exc.messages)) from None
