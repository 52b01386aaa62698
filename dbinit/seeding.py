"""Seed data: reference rows (also used by the data migrations) and the admin user.

Every function is idempotent by natural key and never overwrites what an
operator changed: an existing row is left exactly as it is, and an existing
admin's password is never hashed again.
"""

from __future__ import annotations

import logging
import secrets
from dataclasses import dataclass, field

from .configuration import WELL_KNOWN_PASSWORD
from .errors import DbinitError

logger = logging.getLogger("dbinit")

SYSTEM_TENANT = {"slug": "system", "name": "System", "is_active": True}
# Optional seed data: one Django group per role, so the admin can grant a role's permissions.
ROLE_GROUP_PERMISSIONS = {
    "manager": ["view_tenant", "view_user", "add_user", "change_user", "view_role"],
    "member": ["view_tenant", "view_role"],
}


def _system_roles():
    from accounts.models import SYSTEM_ROLES

    return SYSTEM_ROLES


# --- reference data (the data migrations call these with historical models) ----------
def ensure_system_tenant(Tenant, using="default") -> int:
    """Create the system tenant if missing; return how many rows were created (0 or 1)."""
    if Tenant.objects.using(using).filter(slug=SYSTEM_TENANT["slug"]).exists():
        return 0
    Tenant.objects.using(using).create(**SYSTEM_TENANT)
    return 1


def ensure_system_roles(Role, using="default") -> int:
    """Create the missing system roles in one statement; return how many were created."""
    roles = _system_roles()
    existing = set(
        Role.objects.using(using).filter(slug__in=[slug for slug, _, _ in roles]).values_list("slug", flat=True)
    )
    missing = [Role(slug=slug, name=name, description=desc) for slug, name, desc in roles if slug not in existing]
    Role.objects.using(using).bulk_create(missing)
    return len(missing)


def remove_system_tenant(Tenant, using="default"):
    """Reverse of :func:`ensure_system_tenant` (leaves it if users still belong to it)."""
    tenant = Tenant.objects.using(using).filter(slug=SYSTEM_TENANT["slug"]).first()
    if tenant is not None and not tenant.users.exists():
        tenant.delete()


def remove_system_roles(Role, using="default"):
    """Reverse of :func:`ensure_system_roles` (leaves roles that users still hold)."""
    Role.objects.using(using).filter(slug__in=[s for s, _, _ in _system_roles()], users__isnull=True).delete()


def missing_roles(using="default") -> list[str]:
    from accounts.models import Role

    wanted = [slug for slug, _, _ in _system_roles()]
    have = set(Role.objects.using(using).filter(slug__in=wanted).values_list("slug", flat=True))
    return [slug for slug in wanted if slug not in have]


def missing_seed(using="default", admin_email=None) -> dict:
    """What seed data is missing: ``{"tenant": bool, "roles": [slugs], "admin": bool}``.

    Three index lookups (tenant slug, role slugs, the admin's email), whatever the row counts.
    """
    from django.contrib.auth import get_user_model

    from tenants.models import Tenant

    return {
        "tenant": not Tenant.objects.using(using).filter(slug=SYSTEM_TENANT["slug"]).exists(),
        "roles": missing_roles(using),
        "admin": admin_email is not None
        and not get_user_model().objects.using(using).with_email(admin_email).exists(),
    }


# --- the seed step -----------------------------------------------------------------
@dataclass
class SeedReport:
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
    from tenants.models import Tenant

    report = SeedReport()
    try:
        n = ensure_system_tenant(Tenant, using)
        (report.created if n else report.skipped).append("tenant:system")
        n = ensure_system_roles(Role, using)
        (report.created if n else report.skipped).append(f"roles:{n}" if n else "roles")
    except DbinitError:
        raise
    except Exception as exc:  # a database error: report which seed and why
        raise _seed_error("reference data (system tenant, roles)", exc, using) from exc

    _seed_admin(report, using, admin_email, admin_password, environment, generate_password)

    try:
        _seed_role_groups(report, using)
    except Exception as exc:  # optional data: degrade to a warning
        report.warnings.append(DbinitError("W042", what="role groups", reason=_why(exc)))
        logger.warning("Optional seed data not seeded: role groups (%s)", _why(exc))
    return report


def _seed_error(what: str, exc: BaseException, using: str) -> DbinitError:
    """E042 for a seed the data refused; the connection's, disk's or server's own id otherwise."""
    from django.db import Error

    from .database import ENVIRONMENT_ERRORS, classify

    if isinstance(exc, Error):
        error, _ = classify(exc, using, "seed")
        if error.code in ENVIRONMENT_ERRORS:
            return error
    return DbinitError("E042", what=what, reason=_why(exc))


def _why(exc: BaseException) -> str:
    from .configuration import scrub

    return scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__)


def _seed_admin(report, using, email, password, environment, generate_password):
    from django.contrib.auth import get_user_model

    from accounts.models import normalize_email

    User = get_user_model()
    email = normalize_email(email)
    if environment == "production" and password == WELL_KNOWN_PASSWORD:
        raise DbinitError("E006")
    if User.objects.using(using).with_email(email).exists():
        report.skipped.append(f"admin:{email}")
        return
    if not password and generate_password:
        password = report.generated_password = secrets.token_urlsafe(18)
    try:
        User.objects.db_manager(using).create_superuser(email=email, password=password or None)
    except Exception as exc:
        raise _seed_error(f"the admin user {email}", exc, using) from exc
    report.created.append(f"admin:{email}")
    logger.info("Created the admin user %s", email)
    if not password:
        logger.warning("The admin %s has no usable password yet: run python manage.py changepassword %s",
                       email, email)


def _seed_role_groups(report, using):
    from django.contrib.auth.models import Group, Permission

    from accounts.models import Role

    names = dict(Role.objects.using(using).filter(slug__in=ROLE_GROUP_PERMISSIONS).values_list("slug", "name"))
    wanted = {slug: f"Role: {slug}" for slug in ROLE_GROUP_PERMISSIONS if slug in names}
    existing = set(Group.objects.using(using).filter(name__in=wanted.values()).values_list("name", flat=True))
    missing = {slug: name for slug, name in wanted.items() if name not in existing}
    if not missing:
        report.skipped.append("role-groups")
        return
    Group.objects.using(using).bulk_create([Group(name=n) for n in missing.values()])
    groups = {g.name: g for g in Group.objects.using(using).filter(name__in=missing.values())}
    codenames = {c for slug in missing for c in ROLE_GROUP_PERMISSIONS[slug]}
    perms = {p.codename: p for p in Permission.objects.using(using).filter(codename__in=codenames)}
    for slug, name in missing.items():
        groups[name].permissions.set([perms[c] for c in ROLE_GROUP_PERMISSIONS[slug] if c in perms])
    report.created.append(f"role-groups:{len(missing)}")
