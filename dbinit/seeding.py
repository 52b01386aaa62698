"""Seed data: what is missing (:class:`SeedState`) and the seed step (:func:`seed`).

The reference rows themselves (the system tenant, the roles, the role groups)
belong to their apps (``tenants.reference``, ``accounts.reference``), whose data
migrations create them too; this module adds the admin user and decides, in one
place, what "seeded" means for initdb's seed and verify steps, the health check
and dbrepair. Every function is idempotent by natural key and never overwrites
what an operator changed: an existing row is left exactly as it is, and an
existing admin's password is never hashed again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from django.db import DatabaseError

from . import errors
from .database import error_text
from .errors import DbinitError

logger = logging.getLogger("dbinit")


@dataclass
class SeedState:
    """What seed data a database lacks: three index lookups, whatever the row counts."""

    tenant_missing: bool
    roles_missing: list[str]
    admin_email: str | None = None
    admin_missing: bool = False  # the configured admin (by email); False when no email was asked about

    @classmethod
    def read(cls, using="default", admin_email=None) -> SeedState:
        """Look the seed rows up in ``using`` (raises DatabaseError when their tables are missing)."""
        from django.contrib.auth import get_user_model

        from accounts.models import Role
        from accounts.reference import missing_roles
        from tenants.models import Tenant
        from tenants.reference import system_tenant_missing

        return cls(
            tenant_missing=system_tenant_missing(Tenant, using),
            roles_missing=missing_roles(Role, using),
            admin_email=admin_email,
            admin_missing=admin_email is not None
            and not get_user_model().objects.using(using).with_email(admin_email).exists(),
        )

    @classmethod
    def everything_missing(cls, admin_email=None) -> SeedState:
        """The state of a database whose tables are not there yet."""
        from accounts.reference import SYSTEM_ROLES

        return cls(True, [slug for slug, _, _ in SYSTEM_ROLES], admin_email, admin_email is not None)

    def problems(self, pending_apps=frozenset()) -> list[DbinitError]:
        """The reference rows that are missing, as catalogued errors (the admin is judged by the caller).

        Rows of an app in ``pending_apps`` are left out: its pending data migration creates them.
        """
        from accounts.models import Role
        from tenants.models import Tenant

        found = []
        if self.tenant_missing and Tenant._meta.app_label not in pending_apps:
            found.append(DbinitError(errors.E040))
        if self.roles_missing and Role._meta.app_label not in pending_apps:
            found.append(DbinitError(errors.E041, roles=", ".join(self.roles_missing)))
        return found

    def needs_seeding(self, seed_admin=True) -> bool:
        return bool(self.tenant_missing or self.roles_missing or (seed_admin and self.admin_missing))

    def todo(self) -> list[str]:
        """What a seed run would create, named as initdb reports it."""
        return (["tenant:system"] if self.tenant_missing else []) + \
            ([f"roles:{len(self.roles_missing)}"] if self.roles_missing else []) + \
            ([f"admin:{self.admin_email}"] if self.admin_missing else [])


def role_groups_without_permissions(using="default") -> list[str]:
    """Role groups that lost every permission (dbhealth's W043; dbrepair's reseed gives them back)."""
    from django.contrib.auth.models import Group

    from accounts.reference import emptied_role_groups

    return emptied_role_groups(Group, using)


def active_admin_exists(using="default", admin_email=None, accounts=None) -> bool:
    """An active staff superuser: the configured one by its unique email, else any through
    the partial index on superusers (accounts.0003); neither grows with the number of users.

    ``accounts``: :func:`dbinit.passwords.accounts`' answer when the caller has it (every active
    staff superuser is among them, up to its limit): it answers without a query.
    """
    if accounts is not None:
        return any(account.admin for account in accounts)
    from django.contrib.auth import get_user_model

    admins = get_user_model().objects.using(using).filter(is_active=True, is_staff=True, is_superuser=True)
    return (admin_email is not None and admins.with_email(admin_email).exists()) or admins.exists()


def admin_would_be_created(using="default", admin_email=None) -> bool:
    """Whether the seed step would create the admin ``admin_email`` in ``using``: the database,
    its tables or the admin are missing. Changes nothing (a missing SQLite file is not created)."""
    from django.db import connections

    from . import database as db
    from . import routing

    if not routing.hosts_seed(using):
        return False
    connection = connections[using]
    if connection.vendor == "sqlite":
        path = db.sqlite_path(connection.settings_dict)
        try:
            if path is None or not db.check_sqlite_file(path):
                return True
        except DbinitError:  # not a database: initdb says so; no admin exists in it
            return True
    try:
        return SeedState.read(using, admin_email).admin_missing
    except DatabaseError:  # no database, no tables yet, or not reachable now: the seed would create it
        return True
    finally:
        connection.close()  # initdb connects with its own retries and settings


# --- the seed step -----------------------------------------------------------------
@dataclass
class SeedReport:
    """What the seed step created and skipped, its warnings and a generated password."""

    created: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    warnings: list[DbinitError] = field(default_factory=list)
    generated_password: str | None = None  # shown once on the console, never logged


def seed(using="default", *, admin_email, admin_password, environment, generate_password=True) -> SeedReport:
    """Seed reference data, the admin user and the optional role groups.

    Reference data normally comes from the data migrations; creating it here
    too heals a database whose rows were deleted. A failure for the admin or
    the system tenant is an error; for the optional groups it is a warning.
    """
    from accounts.models import Role
    from accounts.reference import ensure_system_roles
    from tenants.models import Tenant
    from tenants.reference import ensure_system_tenant

    report = SeedReport()
    try:
        n = ensure_system_tenant(Tenant, using)
        (report.created if n else report.skipped).append("tenant:system")
        n = ensure_system_roles(Role, using)
        (report.created if n else report.skipped).append(f"roles:{n}" if n else "roles")
    except DatabaseError as exc:
        raise _seed_error("reference data (system tenant, roles)", exc, using) from exc

    _seed_admin(report, using, admin_email, admin_password, environment, generate_password)

    try:
        _seed_role_groups(report, using)
    except DatabaseError as exc:  # optional data: degrade to a warning
        report.warnings.append(DbinitError(errors.W042, what="role groups", reason=error_text(exc)))
        logger.warning("Optional seed data not seeded: role groups (%s)", error_text(exc))
    return report


def _seed_error(what: str, exc: BaseException, using: str) -> DbinitError:
    """E042 for a seed the data refused; the connection's, disk's or server's own id otherwise."""
    from .database import ENVIRONMENT_ERRORS, classify

    error, _ = classify(exc, using, "seed")
    if error.code in ENVIRONMENT_ERRORS:
        return error
    return DbinitError(errors.E042, what=what, reason=error_text(exc))


def _seed_admin(report, using, email, password, environment, generate_password):
    from django.contrib.auth import get_user_model

    from accounts.models import normalize_email

    User = get_user_model()
    email = normalize_email(email)
    if environment == "production" and password:
        from .passwords import refuse_weak

        refuse_weak(password, email)  # E006 (check_admin_password), then AUTH_PASSWORD_VALIDATORS
    if User.objects.using(using).with_email(email).exists():
        report.skipped.append(f"admin:{email}")
        return
    if not password and generate_password:
        password = report.generated_password = secrets.token_urlsafe(18)
    try:
        User.objects.db_manager(using).create_superuser(email=email, password=password or None)
    except DatabaseError as exc:
        raise _seed_error(f"the admin user {email}", exc, using) from exc
    report.created.append(f"admin:{email}")
    logger.info("Created the admin user %s", email)
    if not password:
        logger.warning("The admin %s has no usable password yet: run python manage.py changepassword %s",
                       email, email)


def _seed_role_groups(report, using):
    from django.contrib.auth.models import Group, Permission

    from accounts.models import Role
    from accounts.reference import ensure_role_groups, restore_emptied_role_groups

    created = ensure_role_groups(Group, Permission, Role, using)
    restored = restore_emptied_role_groups(Group, Permission, using)
    if created:
        report.created.append(f"role-groups:{created}")
    if restored:
        report.created.append(f"role-group-permissions:{restored}")
    if not (created or restored):
        report.skipped.append("role-groups")
