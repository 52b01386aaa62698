"""The accounts app's reference rows: the system roles, and one optional group per role.

The data migration ``0002_seed_system_roles`` calls these with the historical
model, and dbinit's seeding with the current ones: the domain owns its reference
rows; the infrastructure imports them. Idempotent by natural key (the slug, the
group name); a renamed role or an edited group is never changed back. One case is
not an edit: a role group left with no permission at all (its rows deleted, or the
group created while the permissions did not exist yet, as after a run killed inside
post-migrate) gets its role's permissions again; a group holding any permission is
the operator's and stays as it is.
"""

ADMIN_ROLE = "admin"
MANAGER_ROLE = "manager"
MEMBER_ROLE = "member"

# The fixed set of system roles (by slug: a renamed role keeps its new name).
SYSTEM_ROLES = (
    (ADMIN_ROLE, "Administrator", "Full access to every tenant and the admin site."),
    (MANAGER_ROLE, "Manager", "Manages the users and settings of one tenant."),
    (MEMBER_ROLE, "Member", "Uses AI Secretary within one tenant."),
)

# Optional reference data: one Django group per role, so the admin can grant a role's permissions.
ROLE_GROUP_PERMISSIONS = {
    MANAGER_ROLE: ["view_tenant", "view_user", "add_user", "change_user", "view_role"],
    MEMBER_ROLE: ["view_tenant", "view_role"],
}


def role_group_name(slug: str) -> str:
    return f"Role: {slug}"


def missing_roles(Role, using="default") -> list[str]:
    """Slugs of the system roles that do not exist (one indexed query)."""
    wanted = [slug for slug, _, _ in SYSTEM_ROLES]
    have = set(Role.objects.using(using).filter(slug__in=wanted).values_list("slug", flat=True))
    return [slug for slug in wanted if slug not in have]


def ensure_system_roles(Role, using="default") -> int:
    """Create the missing system roles in one statement; return how many were created."""
    missing = set(missing_roles(Role, using))
    Role.objects.using(using).bulk_create(
        [Role(slug=slug, name=name, description=desc) for slug, name, desc in SYSTEM_ROLES if slug in missing]
    )
    return len(missing)


def remove_system_roles(Role, using="default"):
    """Reverse of :func:`ensure_system_roles` (leaves roles that users still hold)."""
    Role.objects.using(using).filter(slug__in=[s for s, _, _ in SYSTEM_ROLES], users__isnull=True).delete()


def emptied_role_groups(Group, using="default") -> list[str]:
    """Names of the role groups that exist but hold no permission at all (one query)."""
    names = [role_group_name(slug) for slug in ROLE_GROUP_PERMISSIONS]
    return sorted(Group.objects.using(using).filter(name__in=names, permissions__isnull=True)
                  .values_list("name", flat=True))


def restore_emptied_role_groups(Group, Permission, using="default") -> int:
    """Give each role group with no permission at all its role's permissions; return how many."""
    emptied = set(emptied_role_groups(Group, using))
    slugs = {role_group_name(slug): slug for slug in ROLE_GROUP_PERMISSIONS if role_group_name(slug) in emptied}
    if not slugs:
        return 0
    codenames = {c for slug in slugs.values() for c in ROLE_GROUP_PERMISSIONS[slug]}
    perms = {p.codename: p for p in Permission.objects.using(using).filter(codename__in=codenames)}
    restored = 0
    for group in Group.objects.using(using).filter(name__in=slugs):
        wanted = [perms[c] for c in ROLE_GROUP_PERMISSIONS[slugs[group.name]] if c in perms]
        group.permissions.set(wanted)
        restored += bool(wanted)
    return restored


def ensure_role_groups(Group, Permission, Role, using="default") -> int:
    """Create the missing role groups with their permissions; return how many were created."""
    names = dict(Role.objects.using(using).filter(slug__in=ROLE_GROUP_PERMISSIONS).values_list("slug", "name"))
    wanted = {slug: role_group_name(slug) for slug in ROLE_GROUP_PERMISSIONS if slug in names}
    existing = set(Group.objects.using(using).filter(name__in=wanted.values()).values_list("name", flat=True))
    missing = {slug: name for slug, name in wanted.items() if name not in existing}
    if not missing:
        return 0
    Group.objects.using(using).bulk_create([Group(name=n) for n in missing.values()])
    groups = {g.name: g for g in Group.objects.using(using).filter(name__in=missing.values())}
    codenames = {c for slug in missing for c in ROLE_GROUP_PERMISSIONS[slug]}
    perms = {p.codename: p for p in Permission.objects.using(using).filter(codename__in=codenames)}
    for slug, name in missing.items():
        groups[name].permissions.set([perms[c] for c in ROLE_GROUP_PERMISSIONS[slug] if c in perms])
    return len(missing)
